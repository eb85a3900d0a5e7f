/**
 * Every HTTP error as `application/problem+json` (RFC 9457), built in one place. Routes throw
 * `HttpProblem` (or let zod, body-parser and multer errors through); `problemHandler` renders them.
 * Anything unexpected becomes a 500 whose body says nothing internal.
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import { z } from 'zod';
import { isDatabaseUnavailable } from '../db.js';
import type { Logger } from '../logger.js';

/** Seconds a client is told to wait when the database is unavailable (a device agent retries after it). */
export const DATABASE_RETRY_AFTER_SEC = 5;

/** One offending field of a 422 problem. */
export interface ProblemField {
  path: string;
  message: string;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** An HTTP error rendered as `application/problem+json` by {@link problemHandler}. */
export class HttpProblem extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly errors?: ProblemField[],
    readonly headers?: Record<string, string>,
  ) {
    super(detail);
    this.name = 'HttpProblem';
  }
}

export const notFound = (detail: string) => new HttpProblem(404, detail);

/** `path` as `items[2].cpu`, the way a client reads it. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out || '(body)';
}

export function zodProblem(error: z.ZodError, where = 'body'): HttpProblem {
  const errors = error.issues.map((i) => ({ path: formatPath(i.path), message: i.message }));
  return new HttpProblem(422, `The request ${where} failed validation: ${errors.map((e) => e.path).join(', ')}`, errors);
}

/** Parse with a zod schema or throw a 422 naming every offending field. */
export function parseOr422<S extends z.ZodType>(schema: S, value: unknown, where = 'body'): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw zodProblem(r.error, where);
  return r.data;
}

/** 415 unless a body-carrying request is JSON. */
export const requireJson: RequestHandler = (req, _res, next) => {
  if (!req.is('application/json')) {
    next(new HttpProblem(415, `Content-Type must be application/json (got ${JSON.stringify(req.headers['content-type'] ?? '')})`));
    return;
  }
  next();
};

/** The problem+json body of a problem (also written raw by the server's `clientError` handler). */
export function problemJson(p: HttpProblem): string {
  return JSON.stringify({
    // RFC 9457 section 4.2.1: `about:blank` says the status code is the whole story; the title is its phrase.
    type: 'about:blank',
    title: problemTitle(p.status),
    status: p.status,
    detail: p.detail,
    ...(p.errors ? { errors: p.errors } : {}),
  });
}

export const problemTitle = (status: number): string => TITLES[status] ?? 'Error';

export function sendProblem(res: Parameters<RequestHandler>[1], p: HttpProblem): void {
  if (p.headers) for (const [k, v] of Object.entries(p.headers)) res.setHeader(k, v);
  res.status(p.status).type('application/problem+json').send(problemJson(p));
}

/** Map a thrown value to a problem; unknown errors are a 500 with a generic detail. */
export function toProblem(err: unknown): HttpProblem | null {
  if (err instanceof HttpProblem) return err;
  if (err instanceof z.ZodError) return zodProblem(err);
  const e = err as { type?: string; status?: number; statusCode?: number; code?: string; message?: string; limit?: number; field?: string };
  // body-parser
  if (e?.type === 'entity.parse.failed') return new HttpProblem(400, 'The request body is not valid JSON');
  if (e?.type === 'entity.too.large') return new HttpProblem(413, `The request body is larger than the limit of ${e.limit} bytes`);
  if (e?.type === 'encoding.unsupported' || e?.type === 'charset.unsupported')
    return new HttpProblem(415, e.message ?? 'Unsupported encoding');
  if (e?.type === 'request.aborted' || e?.type === 'request.size.invalid' || e?.type === 'stream.encoding.set')
    return new HttpProblem(400, 'The request body could not be read');
  // multer
  if (e?.code === 'LIMIT_FILE_SIZE') return new HttpProblem(413, 'The uploaded file is larger than the limit');
  if (typeof e?.code === 'string' && e.code.startsWith('LIMIT_'))
    return new HttpProblem(400, `Upload rejected: ${e.message}${e.field ? ` (${e.field})` : ''}`);
  if (err instanceof URIError) return new HttpProblem(400, 'The request path is not validly encoded');
  const status = e?.status ?? e?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) return new HttpProblem(status, e.message ?? 'Bad request');
  return null;
}

/** Express error handler: renders every error as problem+json; anything unexpected is a 500 that says nothing internal. */
export function problemHandler(logger?: Logger): ErrorRequestHandler {
  return (err, req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const p = toProblem(err);
    if (p) {
      sendProblem(res, p);
      return;
    }
    // An outage, not a bug: the client may retry, so say when (and keep the message free of internals).
    if (isDatabaseUnavailable(err)) {
      logger?.warn(
        { err: { name: (err as Error).name, message: (err as Error).message }, path: req.path },
        'database unavailable: answered 503',
      );
      sendProblem(
        res,
        new HttpProblem(503, `The database is unavailable; retry in ${DATABASE_RETRY_AFTER_SEC} s`, undefined, {
          'Retry-After': String(DATABASE_RETRY_AFTER_SEC),
        }),
      );
      return;
    }
    logger?.error(
      { err: err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err), path: req.path },
      'unhandled error',
    );
    sendProblem(res, new HttpProblem(500, 'An unexpected error occurred; it has been logged'));
  };
}

/** The 404 for unmatched routes. */
export const routeNotFound: RequestHandler = (req, _res, next) => {
  next(new HttpProblem(404, `Route not found: ${req.method} ${req.path}`));
};
