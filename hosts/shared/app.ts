/**
 * The Express base both hosts share: request ids, request logging, JSON parsing that keeps the raw bytes
 * (signatures are computed over them, never over re-serialised JSON), and the problem+json tail.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import express from 'express';
import type { Express, Request } from 'express';
import { pinoHttp } from 'pino-http';
import type { Logger as PinoLogger } from 'pino';
import { problemHandler, routeNotFound } from '../../lib/http/problem.js';

declare module 'express-serve-static-core' {
  interface Request {
    /** The exact request body bytes, set for JSON bodies (for Standard Webhooks verification). */
    rawBody?: Buffer;
  }
}

export interface BaseAppOptions {
  service: string;
  logger: PinoLogger;
  /** `BODY_LIMIT` in bytes for JSON bodies. */
  bodyLimit: number;
}

/** An inbound `X-Request-ID` is kept when it is a plausible id; anything else is replaced (it is logged and stored). */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * The request's id: the one assigned when the request came in (echoed as `X-Request-ID`, bound on its log
 * lines, propagated on the forwards of what it stored); before that, a plausible inbound `X-Request-ID` or
 * a new one.
 */
export function requestIdOf(req: IncomingMessage & { id?: unknown }): string {
  if (req.id !== undefined && req.id !== null) return String(req.id);
  const h = req.headers['x-request-id'];
  const v = Array.isArray(h) ? h[0] : h;
  return v && REQUEST_ID.test(v) ? v : randomUUID();
}

export function createBaseApp({ logger, bodyLimit }: BaseAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(
    pinoHttp({
      logger,
      genReqId(req: IncomingMessage, res: ServerResponse) {
        const id = requestIdOf(req);
        res.setHeader('X-Request-ID', id);
        return id;
      },
      customLogLevel(_req, res, err) {
        if (err || res.statusCode >= 500) return 'error';
        if (res.statusCode >= 400) return 'warn';
        return 'info';
      },
      // Health probes and scrapes would drown the log.
      autoLogging: { ignore: (req) => /^\/(health|metrics)/.test(req.url ?? '') },
    }),
  );
  app.use(
    express.json({
      limit: bodyLimit,
      verify(req, _res, buf) {
        (req as Request).rawBody = buf;
      },
    }),
  );
  // express.json reads an empty body as `{}`, which would pass every all-optional schema. No body is no body:
  // routes that need one answer 422 naming it; routes that take none (rotate-secret, test) do not care.
  app.use((req: Request, _res, next) => {
    if (req.rawBody === undefined || req.rawBody.length === 0) req.body = undefined;
    next();
  });
  return app;
}

/** Append the 404 for unmatched routes and the problem+json error handler; call after every router. */
export function finishApp(app: Express, logger: PinoLogger): Express {
  app.use(routeNotFound);
  app.use(problemHandler(logger));
  return app;
}
