/**
 * With `MENTOR_SIGNING_SECRET` set, ingest requests must carry a valid Standard Webhooks signature over the
 * exact body bytes (`req.rawBody`, kept by the base app's JSON parser). Without a secret the check is off,
 * so a seed-style devices backend that does not sign can still forward.
 */
import type { RequestHandler } from 'express';
import { HttpProblem } from '../../lib/http/problem.js';
import { verify, WebhookVerificationError } from '../../lib/signing.js';

const EMPTY = Buffer.alloc(0);

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
