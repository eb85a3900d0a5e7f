/**
 * `Authorization: Bearer <token>` for the management API (RFC 6750). Both sides are hashed before the
 * timing-safe compare, so neither the token's content nor its length leaks through response times. The
 * token is never logged and never echoed in an error.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';
import { HttpProblem } from './problem.js';

const digest = (value: string) => createHash('sha256').update(value, 'utf8').digest();

/** Constant-time string equality. */
export function tokensEqual(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

const REALM = 'Bearer realm="raqeem-relay"';

/** `Bearer` with nothing after it: what `-H "Authorization: Bearer $TOKEN"` sends while `$TOKEN` is unset. */
const EMPTY_BEARER = /^Bearer[ \t]*$/i;
const missingToken = (name?: string) =>
  'The bearer token is missing (Authorization: Bearer with nothing after it)' +
  (name ? `; send the token set with ${name} (in a shell: export TOKEN=<that token>, then Bearer $TOKEN)` : '');

/**
 * Require the admin token. Without a configured token the API is off: 503 saying how to turn it on.
 * A missing header, another scheme (`Basic`, a bare token) or a wrong token is a 401 with
 * `WWW-Authenticate: Bearer`.
 */
export function requireAdminToken(token: string | undefined): RequestHandler {
  const expected = token?.trim() ? token.trim() : undefined;
  return (req, _res, next) => {
    if (expected === undefined) {
      next(new HttpProblem(503, 'The management API is disabled: set RELAY_ADMIN_TOKEN to enable it'));
      return;
    }
    const header = req.headers.authorization;
    if (!header) {
      next(
        new HttpProblem(401, 'Authentication required: send Authorization: Bearer <RELAY_ADMIN_TOKEN>', undefined, {
          'WWW-Authenticate': REALM,
        }),
      );
      return;
    }
    const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
    if (!m && EMPTY_BEARER.test(header)) {
      next(unauthorized(missingToken('RELAY_ADMIN_TOKEN'), 'invalid_request'));
      return;
    }
    if (!m) {
      next(
        new HttpProblem(401, 'The Authorization header must use the Bearer scheme', undefined, {
          'WWW-Authenticate': `${REALM}, error="invalid_request"`,
        }),
      );
      return;
    }
    if (!tokensEqual(m[1]!, expected)) {
      next(new HttpProblem(401, 'The bearer token is not valid', undefined, { 'WWW-Authenticate': `${REALM}, error="invalid_token"` }));
      return;
    }
    next();
  };
}

/** 401 with `WWW-Authenticate: Bearer` (`error="invalid_token"` when a token was sent but is not accepted). */
export function unauthorized(detail: string, error?: 'invalid_request' | 'invalid_token'): HttpProblem {
  return new HttpProblem(401, detail, undefined, { 'WWW-Authenticate': error ? `${REALM}, error="${error}"` : REALM });
}

/** The token of an `Authorization: Bearer <token>` header: undefined when there is none, a 401 when it is malformed. */
export function bearerToken(header: string | undefined, name?: string): string | undefined {
  if (!header) return undefined;
  if (EMPTY_BEARER.test(header)) throw unauthorized(missingToken(name), 'invalid_request');
  const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (!m) throw unauthorized('The Authorization header must use the Bearer scheme', 'invalid_request');
  return m[1]!;
}

/** Require `Authorization: Bearer <expected>`; `name` (the variable holding it) is named in the 401, never the value. */
export function requireBearer(expected: string, name: string): RequestHandler {
  return (req, _res, next) => {
    try {
      const token = bearerToken(req.headers.authorization, name);
      if (token === undefined) throw unauthorized(`Authentication required: send Authorization: Bearer <${name}>`);
      if (!tokensEqual(token, expected)) throw unauthorized('The bearer token is not valid', 'invalid_token');
      next();
    } catch (err) {
      next(err);
    }
  };
}
