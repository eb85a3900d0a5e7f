/**
 * Who is calling the management API, and what a caller limited to one webhook endpoint may do. Every
 * management request gets a principal here, in one place: `Authorization: Bearer <admin token>` or an
 * operator's console session is `{kind: 'admin'}`; a session opened from a portal link is
 * `{kind: 'portal', endpointId}`. `scopeToPrincipal` then lets a portal session through to its own
 * endpoint's routes only; the routes themselves know nothing about portals.
 */
import type { Request, RequestHandler } from 'express';
import { tokensEqual, requireAdminToken } from './auth.js';
import { HttpProblem, notFound } from './problem.js';
import { CSRF_HEADER, SESSION_COOKIE, readCookie } from './session.js';
import type { ConsoleSessions } from './session.js';

/** Who a management request acts as: the operator, or a portal session limited to one webhook endpoint. */
export type Principal = { kind: 'admin' } | { kind: 'portal'; endpointId: string };

declare module 'express-serve-static-core' {
  interface Request {
    /** Set by the management API's authentication. */
    principal?: Principal;
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The console session a request's cookie names, if it is live. */
export function sessionOf(req: Request, sessions: ConsoleSessions | undefined) {
  return sessions?.get(readCookie(req.headers.cookie, SESSION_COOKIE));
}

/** 403 unless a cookie-authenticated mutation carries the session's CSRF token. */
export function checkCsrf(req: Request, csrf: string): void {
  if (SAFE_METHODS.has(req.method)) return;
  const given = req.headers[CSRF_HEADER];
  if (typeof given !== 'string' || !tokensEqual(given, csrf))
    throw new HttpProblem(403, 'A change made with a console session must carry its CSRF token in the X-CSRF-Token header');
}

/**
 * The bearer token (when an Authorization header is sent: it always wins, and a wrong one is a 401 even with
 * a cookie), else a live console session (plus its CSRF token on mutations), else the admin token's 401/503.
 */
export function authenticate(o: { adminToken: string | undefined; sessions?: ConsoleSessions }): RequestHandler {
  const bearer = requireAdminToken(o.adminToken);
  return (req, res, next) => {
    // The router mounts this once per path prefix; a request under two (a route an extension adds below
    // another's prefix) is authenticated once.
    if (req.principal) return next();
    if (req.headers.authorization === undefined) {
      const session = sessionOf(req, o.sessions);
      if (session) {
        try {
          checkCsrf(req, session.csrf);
        } catch (err) {
          return next(err);
        }
        req.principal = session.principal;
        return next();
      }
    }
    bearer(req, res, (err?: unknown) => {
      if (err) return next(err);
      req.principal = { kind: 'admin' };
      next();
    });
  };
}

/** What a portal session may call: its endpoint's routes, matched on the path under the router's mount. */
interface Rule {
  methods: string[];
  path: RegExp;
  /** Check the request against the session's endpoint; throw to refuse. */
  check(req: Request, endpointId: string, m: RegExpExecArray): void | Promise<void>;
}

const decode = (segment: string) => {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
};

/**
 * Lets a portal session through to: its endpoint (read; PATCH of `filter` only; test event; secret rotation),
 * the delivery log forced to its endpoint, one of its deliveries and its retry, and the event catalogue.
 * Another endpoint's endpoint or delivery is a 404, as if it did not exist; every other route is a 403.
 * Replay, `headers` and `rate_limit` stay admin-only: replay re-sends history from before the link existed,
 * headers carry the operator's credentials for the receiver, and a rate limit is the operator's capacity
 * decision. Admins pass untouched.
 */
export function scopeToPrincipal(o: { deliveryEndpoint(id: number): Promise<string | null | undefined> }): RequestHandler {
  const otherEndpoint = (id: string) => notFound(`No webhook endpoint ${JSON.stringify(id.slice(0, 80))}`);
  const ownEndpoint = (req: Request, endpointId: string, m: RegExpExecArray) => {
    if (decode(m[1]!) !== endpointId) throw otherEndpoint(decode(m[1]!));
  };
  const ownDelivery = async (_req: Request, endpointId: string, m: RegExpExecArray) => {
    const owner = await o.deliveryEndpoint(Number(m[1]));
    if (owner !== endpointId) throw notFound(`No delivery ${m[1]}`);
  };
  const rules: Rule[] = [
    { methods: ['GET', 'HEAD'], path: /^\/webhooks\/([^/]+)\/?$/i, check: ownEndpoint },
    {
      methods: ['PATCH'],
      path: /^\/webhooks\/([^/]+)\/?$/i,
      check(req, endpointId, m) {
        ownEndpoint(req, endpointId, m);
        const body: unknown = req.body;
        const others = body && typeof body === 'object' && !Array.isArray(body) ? Object.keys(body).filter((k) => k !== 'filter') : [];
        if (others.length > 0)
          throw new HttpProblem(
            403,
            `A portal session may change the endpoint's filter only, not ${others.map((k) => JSON.stringify(k)).join(', ')}`,
            others.map((path) => ({ path, message: 'needs the admin token' })),
          );
      },
    },
    { methods: ['POST'], path: /^\/webhooks\/([^/]+)\/(?:test|rotate-secret)\/?$/i, check: ownEndpoint },
    {
      methods: ['GET', 'HEAD'],
      path: /^\/deliveries\/?$/i,
      check(req, endpointId) {
        // The log is forced to the session's endpoint whatever the query asks for.
        Object.defineProperty(req, 'query', {
          value: { ...req.query, webhook_id: endpointId },
          writable: true,
          configurable: true,
          enumerable: true,
        });
      },
    },
    { methods: ['GET', 'HEAD'], path: /^\/deliveries\/(\d{1,15})\/?$/, check: ownDelivery },
    { methods: ['POST'], path: /^\/deliveries\/(\d{1,15})\/retry\/?$/i, check: ownDelivery },
    // The catalogue describes event types, nothing of the relay's state; the filter editor needs it.
    { methods: ['GET', 'HEAD'], path: /^\/event-types\/?$/i, check: () => undefined },
  ];
  return async (req, _res, next) => {
    const p = req.principal;
    if (!p || p.kind !== 'portal') return next();
    try {
      for (const rule of rules) {
        if (!rule.methods.includes(req.method)) continue;
        const m = rule.path.exec(req.path);
        if (!m) continue;
        await rule.check(req, p.endpointId, m);
        return next();
      }
      throw new HttpProblem(
        403,
        `This portal session is limited to webhook endpoint ${p.endpointId}; ${req.method} ${req.baseUrl}${req.path} needs the admin token`,
      );
    } catch (err) {
      next(err);
    }
  };
}
