/**
 * Browser sessions for the console, and the signed portal links that open a session scoped to one webhook
 * endpoint. The management API accepts a session cookie as an alternative to `Authorization: Bearer`
 * (see `principal.ts`), so the page never holds the admin token: it is exchanged once for a session.
 *
 * Sessions live in this process's memory: a restart signs everyone out, and behind a load balancer a
 * session is only known to the process that created it (use sticky sessions, or the bearer token). That is
 * the price of a sign-out that really ends the session, with no session table to migrate and prune.
 *
 * Portal link tokens are stateless: `v1.<base64url {"e": endpoint id, "x": expiry (Unix s)}>.<HMAC>`, keyed
 * by a key derived from the admin token, so every process that shares the token accepts a link and changing
 * the token revokes every link at once.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { tokensEqual } from './auth.js';
import type { Principal } from './principal.js';

/** The session cookie's name. */
export const SESSION_COOKIE = 'relay_console';
/** The header a cookie-authenticated mutation carries the session's CSRF token in. */
export const CSRF_HEADER = 'x-csrf-token';

/** One signed-in browser: an operator's, or a portal session held to one endpoint. */
export interface ConsoleSession {
  /** The cookie value (256 random bits). */
  id: string;
  /** Sent back in `X-CSRF-Token` on every mutation made with the cookie. */
  csrf: string;
  principal: Principal;
  /** Epoch ms. */
  expiresAt: number;
}

/** Options of {@link ConsoleSessions}. */
export interface ConsoleSessionsOptions {
  /** `RELAY_ADMIN_TOKEN`; without it there are no sessions and no portal links. */
  adminToken: string | undefined;
  /** Lifetime of an operator's session (8 h). A portal session ends when its link expires. */
  adminTtlMs?: number;
  /** Sessions kept at most; the oldest is dropped first (10 000). */
  maxSessions?: number;
  /** For tests. */
  now?: () => number;
}

/** What {@link ConsoleSessions.checkPortalToken} found: the endpoint and expiry, or why the token is refused. */
export type PortalTokenCheck =
  | { ok: true; endpointId: string; expiresAt: number }
  | { ok: false; reason: 'invalid' | 'expired'; expiresAt?: number };

const b64url = (b: Buffer) => b.toString('base64url');
const ENDPOINT_ID = /^wh_[0-9A-Za-z]{1,64}$/;
/** Longest portal link lifetime: a week. */
export const PORTAL_MAX_TTL_SECONDS = 7 * 24 * 3600;

/**
 * The console's sessions (in this process's memory) and its portal link tokens (stateless, signed). Pass one
 * to `managementRouter({ sessions })` so the management API accepts the session cookie.
 */
export class ConsoleSessions {
  /** Lifetime of an operator's session in ms. */
  readonly adminTtlMs: number;
  private readonly sessions = new Map<string, ConsoleSession>();
  private readonly maxSessions: number;
  private readonly linkKey: Buffer | null;
  private readonly adminToken: string | undefined;
  private readonly now: () => number;

  constructor(o: ConsoleSessionsOptions) {
    const token = o.adminToken?.trim() || undefined;
    this.adminTtlMs = o.adminTtlMs ?? 8 * 3600_000;
    this.maxSessions = o.maxSessions ?? 10_000;
    this.now = o.now ?? Date.now;
    this.adminToken = token;
    // A key of its own (not the token itself), so a link's MAC says nothing usable about the token.
    this.linkKey = token === undefined ? null : createHmac('sha256', token).update('raqeem-relay portal links v1').digest();
  }

  /** Whether sessions can exist at all (an admin token is configured). */
  get enabled(): boolean {
    return this.linkKey !== null;
  }

  /** Constant-time check of a token against the admin token. */
  adminTokenMatches(token: string): boolean {
    return this.adminToken !== undefined && tokensEqual(token.trim(), this.adminToken);
  }

  /** Start a session for `principal`, ending at `expiresAt` (epoch ms) or after `adminTtlMs`, whichever is first. */
  create(principal: Principal, expiresAt?: number): ConsoleSession {
    const now = this.now();
    const session: ConsoleSession = {
      id: b64url(randomBytes(32)),
      csrf: b64url(randomBytes(32)),
      principal,
      expiresAt: Math.min(expiresAt ?? Infinity, now + this.adminTtlMs),
    };
    if (this.sessions.size >= this.maxSessions) this.sweep(now);
    // Map iteration is insertion order: the first key is the oldest session.
    while (this.sessions.size >= this.maxSessions) this.sessions.delete(this.sessions.keys().next().value!);
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session with this cookie value, if any. */
  get(id: string | undefined): ConsoleSession | undefined {
    if (!id) return undefined;
    const s = this.sessions.get(id);
    if (!s) return undefined;
    if (s.expiresAt <= this.now()) {
      this.sessions.delete(id);
      return undefined;
    }
    return s;
  }

  /** End a session (sign-out). */
  end(id: string | undefined): void {
    if (id) this.sessions.delete(id);
  }

  /** A signed portal token for `endpointId`, valid for `ttlSeconds`. */
  portalToken(endpointId: string, ttlSeconds: number): { token: string; expiresAt: number } {
    if (!this.linkKey) throw new Error('portal links need RELAY_ADMIN_TOKEN');
    const expiresAt = (Math.floor(this.now() / 1000) + ttlSeconds) * 1000;
    const payload = b64url(Buffer.from(JSON.stringify({ e: endpointId, x: expiresAt / 1000 })));
    return { token: `v1.${payload}.${this.mac(payload)}`, expiresAt };
  }

  /** Check a portal token's signature, then its expiry. */
  checkPortalToken(token: string): PortalTokenCheck {
    if (!this.linkKey) return { ok: false, reason: 'invalid' };
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== 'v1') return { ok: false, reason: 'invalid' };
    const [, payload, mac] = parts as [string, string, string];
    const expected = Buffer.from(this.mac(payload));
    const given = Buffer.from(mac);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { ok: false, reason: 'invalid' };
    let claims: { e?: unknown; x?: unknown };
    try {
      claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof claims;
    } catch {
      return { ok: false, reason: 'invalid' };
    }
    if (typeof claims?.e !== 'string' || !ENDPOINT_ID.test(claims.e) || typeof claims.x !== 'number' || !Number.isFinite(claims.x))
      return { ok: false, reason: 'invalid' };
    const expiresAt = claims.x * 1000;
    if (expiresAt <= this.now()) return { ok: false, reason: 'expired', expiresAt };
    return { ok: true, endpointId: claims.e, expiresAt };
  }

  private mac(payload: string): string {
    return b64url(createHmac('sha256', this.linkKey!).update(payload).digest());
  }

  private sweep(now: number): void {
    for (const [id, s] of this.sessions) if (s.expiresAt <= now) this.sessions.delete(id);
  }
}

/** The value of cookie `name` in a `Cookie` header (RFC 6265 syntax; the first one wins). */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    if (part.slice(0, i).trim() === name)
      return part
        .slice(i + 1)
        .trim()
        .replace(/^"(.*)"$/, '$1');
  }
  return undefined;
}
