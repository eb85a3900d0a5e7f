/**
 * The JSON body parser both hosts and the management router use: it keeps the exact bytes (signatures are
 * computed over them, never over re-serialised JSON), refuses bytes that are not UTF-8 (body-parser would
 * decode them to U+FFFD and the replacement would be stored as if the client had sent it), and reads an
 * empty body as no body.
 */
import type { IncomingMessage } from 'node:http';
import express from 'express';
import type { RequestHandler } from 'express';
import { HttpProblem } from './problem.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

export interface JsonBodyOptions {
  /** Largest body in bytes (or a size like `1mb`). */
  limit: number | string;
}

/**
 * `req.rawBody` holds the exact bytes of a JSON body; `req.body` is undefined when the body was empty. A body
 * an earlier parser already read (an app that mounts the management router behind its own) is left as it is.
 */
export function jsonBody({ limit }: JsonBodyOptions): RequestHandler {
  const parse = express.json({
    limit,
    verify(req: IncomingMessage & { rawBody?: Buffer }, _res, buf) {
      try {
        utf8.decode(buf);
      } catch {
        // body-parser keeps our status (400) and the HttpProblem renders as problem+json.
        throw new HttpProblem(400, 'The request body is not valid UTF-8');
      }
      req.rawBody = buf;
    },
  });
  // express.json reads an empty body as `{}`, which would pass every all-optional schema. No body is no
  // body: routes that need one answer 422 naming it; routes that take none (rotate-secret, test) do not care.
  return (req, res, next) => {
    if (req.readableEnded) return next();
    parse(req, res, (err?: unknown) => {
      if (err) return next(err);
      const raw = (req as { rawBody?: Buffer }).rawBody;
      if (raw === undefined || raw.length === 0) req.body = undefined;
      next();
    });
  };
}
