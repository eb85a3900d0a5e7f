/**
 * Signed forwards between the hosts (SPEC section 6). With `MENTOR_SIGNING_SECRET` set, the mentor's ingest
 * routes and the devices host's command route require a valid Standard Webhooks signature over the exact
 * body bytes (`req.rawBody`, kept by the base app's JSON parser). Without a secret the check is off, so a
 * seed-style backend that does not sign can still forward.
 */
import type { RequestHandler } from 'express';
import { HttpProblem } from '../../lib/http/problem.js';
import { sign, verify, WebhookVerificationError } from '../../lib/signing.js';
import { ConfigError } from './config.js';

const EMPTY = Buffer.alloc(0);

/** 401 (logged, with `WWW-Authenticate: Webhook`) unless the request is signed with `secret`. */
export function requireSignature(secret: string | undefined): RequestHandler {
  if (!secret) return (_req, _res, next) => next();
  return (req, _res, next) => {
    try {
      verify(req.rawBody ?? EMPTY, req.headers, secret);
      next();
    } catch (err) {
      if (!(err instanceof WebhookVerificationError)) throw err;
      req.log?.warn({ reason: err.reason }, 'rejected an unsigned or badly signed request');
      next(new HttpProblem(401, `Webhook signature rejected (${err.reason}): ${err.message}`, undefined, { 'www-authenticate': 'Webhook' }));
    }
  };
}

/** A malformed secret would make every signed request fail; refuse it at start-up, naming the variable. */
export function checkSigningSecret(secret: string | undefined): void {
  if (!secret) return;
  try {
    sign({ id: 'check', timestamp: 0, body: '', secret });
  } catch {
    throw new ConfigError('Invalid configuration: MENTOR_SIGNING_SECRET must be whsec_ followed by base64 (generate one with `raqeem-relay` or generateSecret())');
  }
}
