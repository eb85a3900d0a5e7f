/** Pieces shared by the management routes: body and time parsing, and the no-store header for secrets. */
import type { RequestHandler, Response } from 'express';
import { z } from 'zod';
import { HttpProblem, requireJson } from '../problem.js';
import { safeString } from '../strings.js';

/** A JSON body is required (415 otherwise) unless the request has none at all. */
export const optionalJson: RequestHandler = (req, res, next) => {
  const hasBody =
    (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0') ||
    req.headers['transfer-encoding'] !== undefined;
  if (!hasBody) {
    req.body = {};
    next();
    return;
  }
  requireJson(req, res, next);
};

/** A JSON object body: `null`, arrays and scalars are a 422 on `(body)`, not a crash. */
export const jsonObject = <S extends z.ZodRawShape>(shape: S) => z.object(shape, { error: 'The request body must be a JSON object' });

/** An ISO-8601 date or date-time, as epoch milliseconds. */
export const isoTime = safeString(40)
  .refine((s) => /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(s) && !Number.isNaN(Date.parse(s)), {
    message: 'must be an ISO-8601 date or date-time, e.g. 2025-01-31T12:00:00Z',
  })
  .transform((s) => Date.parse(s));

/** Responses that carry a secret are never cached. */
export function noStore(res: Response): Response {
  return res.setHeader('Cache-Control', 'no-store');
}

/** 422 for a window whose end is not after its start. */
export function checkWindow(since: number | undefined, until: number | undefined): void {
  if (since !== undefined && until !== undefined && until <= since) {
    throw new HttpProblem(422, 'until must be later than since', [{ path: 'until', message: 'must be later than since' }]);
  }
}
