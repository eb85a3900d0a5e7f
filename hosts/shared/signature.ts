/**
 * Signed forwards between the hosts (SPEC section 6). With `MENTOR_SIGNING_SECRET` set, the mentor's ingest
 * routes and the devices host's command route require a valid Standard Webhooks signature over the exact
 * body bytes (`req.rawBody`, kept by the base app's JSON parser). Without a secret the check is off, so a
 * seed-style backend that does not sign can still forward.
 *
 * Replays: each app remembers the `webhook-id`s it accepted, with a digest of what they carried (method,
 * path, body), for as long as their timestamp can still verify (timestamp + tolerance). The same id with
 * the same request passes (a sender's retry is an idempotent no-op for the route); the same id carrying
 * anything else is refused. Memory is bounded: expired ids are swept, and past `REPLAY_MAX_IDS` the oldest
 * are forgotten (a forgotten id could be replayed once more within its window; the routes stay idempotent).
 * The memory is per process: several processes behind one address each keep their own.
 */
import { createHash } from 'node:crypto';
import type { Application, Request, RequestHandler } from 'express';
import { HttpProblem } from '../../lib/http/problem.js';
import { verify, WebhookVerificationError } from '../../lib/signing.js';
import { SECRET_HINT, secretProblem } from '../../lib/signingSecret.js';
import { ConfigError } from './config.js';

const EMPTY = Buffer.alloc(0);

/** `verify`'s default tolerance: how far a signed timestamp may be from now, either way. */
export const SIGNATURE_TOLERANCE_SEC = 300;
/** At most this many accepted ids are remembered per app (~100 bytes each). */
export const REPLAY_MAX_IDS = 100_000;

/** Accepted webhook ids of one app: digest of the id -> digest of the request and when to forget it. */
export class ReplayMemory {
  private readonly seen = new Map<string, { fingerprint: string; expiresAt: number }>();
  constructor(private readonly maxIds = REPLAY_MAX_IDS) {}

  /** Record `id` as accepted until `expiresAt` (ms); false when it was already accepted for another request. */
  accept(id: string, fingerprint: string, expiresAt: number, now = Date.now()): boolean {
    const key = digest(id);
    const known = this.seen.get(key);
    if (known && known.expiresAt > now) return known.fingerprint === fingerprint;
    this.seen.delete(key);
    if (this.seen.size >= this.maxIds) this.sweep(now);
    this.seen.set(key, { fingerprint, expiresAt });
    return true;
  }

  get size(): number {
    return this.seen.size;
  }

  private sweep(now: number): void {
    for (const [key, v] of this.seen) if (v.expiresAt <= now) this.seen.delete(key);
    // Still full: forget the oldest accepted (Map iterates in insertion order).
    for (const key of this.seen.keys()) {
      if (this.seen.size < this.maxIds) break;
      this.seen.delete(key);
    }
  }
}

const digest = (value: string | Buffer) => createHash('sha256').update(value).digest('base64url');

/** One memory per app, so every signed route of a host shares it and two hosts in one process do not. */
const memories = new WeakMap<Application, ReplayMemory>();
function memoryOf(req: Request): ReplayMemory {
  let memory = memories.get(req.app);
  if (!memory) memories.set(req.app, (memory = new ReplayMemory()));
  return memory;
}

/** What a webhook id was accepted for: the route it was sent to and its exact body. */
function fingerprintOf(req: Request): string {
  const h = createHash('sha256').update(`${req.method} ${req.baseUrl}${req.path}\n`);
  return h.update(req.rawBody ?? EMPTY).digest('base64url');
}

/** 401 (logged, with `WWW-Authenticate: Webhook`) unless the request is signed with `secret` and not a replay. */
export function requireSignature(secret: string | undefined): RequestHandler {
  if (!secret) return (_req, _res, next) => next();
  return (req, _res, next) => {
    let signed: { id: string; timestamp: number };
    try {
      signed = verify(req.rawBody ?? EMPTY, req.headers, secret, { toleranceSec: SIGNATURE_TOLERANCE_SEC });
    } catch (err) {
      if (!(err instanceof WebhookVerificationError)) throw err;
      req.log?.warn({ reason: err.reason }, 'rejected an unsigned or badly signed request');
      next(
        new HttpProblem(401, `Webhook signature rejected (${err.reason}): ${err.message}`, undefined, { 'www-authenticate': 'Webhook' }),
      );
      return;
    }
    const expiresAt = (signed.timestamp + SIGNATURE_TOLERANCE_SEC) * 1000;
    if (!memoryOf(req).accept(signed.id, fingerprintOf(req), expiresAt)) {
      req.log?.warn({ reason: 'replayed_id' }, 'rejected a replayed webhook-id carrying a different request');
      next(
        new HttpProblem(
          401,
          'Webhook signature rejected (replayed_id): this webhook-id was already accepted for a different request',
          undefined,
          {
            'www-authenticate': 'Webhook',
          },
        ),
      );
      return;
    }
    next();
  };
}

/**
 * A malformed secret would make every signed request fail, and a short one is guessable: refuse either at
 * start-up, naming the variable and how to make a good one (never echoing the value).
 */
export function checkSigningSecret(secret: string | undefined, variable = 'MENTOR_SIGNING_SECRET'): void {
  if (!secret) return;
  const problem = secretProblem(secret);
  if (problem) throw new ConfigError(`Invalid configuration: ${variable} ${problem}; ${SECRET_HINT}`);
}
