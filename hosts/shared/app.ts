/**
 * The Express base both hosts share: request ids, request logging, JSON parsing that keeps the raw bytes
 * (signatures are computed over them, never over re-serialised JSON), and the problem+json tail.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import cors from 'cors';
import express from 'express';
import type { Express, Request, RequestHandler } from 'express';
import helmet from 'helmet';
import type { Logger as PinoLogger } from 'pino';
import { jsonBody } from '../../lib/http/body.js';
import { problemHandler, routeNotFound } from '../../lib/http/problem.js';
import { requestLogging } from './requestLog.js';

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
  /**
   * Path prefixes (full, e.g. `/api/v1/webhooks`) whose router authenticates and then parses the body
   * itself, the management API's: the app-wide parser skips them so an unauthenticated body is never read
   * (401 before any 400 or 413).
   */
  parsedByRouters?: readonly string[];
  /**
   * Guards that must answer before any body is read (an admin token check): each is mounted for POST on
   * its path ahead of the JSON parser, so a request without the token gets 401, never a 400 or 413 about
   * a body it had no right to send.
   */
  guardsBeforeBody?: ReadonlyArray<{ path: string; guard: RequestHandler }>;
  /** `CORS_ORIGINS`: browser origins allowed to call the host (`*` = any); unset = no CORS headers at all. */
  corsOrigins?: '*' | readonly string[];
  /** The methods the host's routes use, answered in preflights (`Access-Control-Allow-Methods`). */
  corsMethods?: readonly string[];
}

/**
 * Request headers a browser app may send: JSON bodies, bearer tokens (admin, read, device), idempotency,
 * Standard Webhooks signatures (a browser-based forwarder) and a request id to trace by.
 */
export const CORS_ALLOWED_HEADERS = [
  'Content-Type',
  'Authorization',
  'Idempotency-Key',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
  'X-Request-ID',
] as const;

/** Response headers a browser app may read besides the CORS-safelisted ones. */
export const CORS_EXPOSED_HEADERS = ['X-Request-ID', 'Retry-After', 'WWW-Authenticate', 'Location'] as const;

/** How long a browser may cache a preflight answer: 2 hours, Chromium's own ceiling (Firefox allows 24 h). */
export const CORS_MAX_AGE_SEC = 7200;

/**
 * CORS for browser apps on other origins (the `cors` package). No credentials mode, ever: the hosts
 * authenticate with bearer tokens in `Authorization`, which needs none, so `Access-Control-Allow-Credentials`
 * is never sent and `*` can never be combined with it. A listed origin is echoed (with `Vary: Origin`); any
 * other origin gets no `Access-Control-Allow-*` headers, so its browser refuses the answer.
 */
export function corsMiddleware(origins: '*' | readonly string[], methods: readonly string[]): RequestHandler {
  return cors({
    origin: origins === '*' ? '*' : [...origins],
    methods: [...methods],
    allowedHeaders: [...CORS_ALLOWED_HEADERS],
    exposedHeaders: [...CORS_EXPOSED_HEADERS],
    credentials: false,
    maxAge: CORS_MAX_AGE_SEC,
    optionsSuccessStatus: 204,
    preflightContinue: false,
  });
}

/** JSON answers load nothing and may not be framed; a route serving a page sets its own with `withCsp`. */
export const JSON_CSP = "default-src 'none'; frame-ancestors 'none'";

/** Replace the app-wide Content-Security-Policy for the routes this middleware is mounted on. */
export const withCsp =
  (policy: string): RequestHandler =>
  (_req, res, next) => {
    res.setHeader('Content-Security-Policy', policy);
    next();
  };

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

export function createBaseApp({
  logger,
  bodyLimit,
  parsedByRouters = [],
  guardsBeforeBody = [],
  corsOrigins,
  corsMethods = ['GET', 'HEAD', 'POST'],
}: BaseAppOptions): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use(
    requestLogging(logger, (req, res) => {
      const id = requestIdOf(req);
      res.setHeader('X-Request-ID', id);
      return id;
    }),
  );
  // Before every route and guard: a preflight is answered here (it carries no token), and every answer,
  // errors included, carries the headers a browser needs to read it.
  if (corsOrigins) app.use(corsMiddleware(corsOrigins, corsMethods));
  // Every answer, errors included: nosniff, no referrer, no framing, and a CSP that lets a JSON answer
  // load nothing.
  app.use(
    helmet({
      // Set below from JSON_CSP, the one string the server's raw client-error answers use too.
      contentSecurityPolicy: false,
      referrerPolicy: { policy: 'no-referrer' },
    }),
    withCsp(JSON_CSP),
  );
  for (const { path, guard } of guardsBeforeBody) app.post(path, guard);
  const parse = jsonBody({ limit: bodyLimit });
  // Express matches routes case-insensitively, so the skip does too.
  const skipped = parsedByRouters.map((p) => p.toLowerCase());
  const ownParser = (req: Request) => {
    const p = req.path.toLowerCase();
    return skipped.some((s) => p === s || p.startsWith(`${s}/`));
  };
  app.use((req, res, next) => (ownParser(req) ? next() : parse(req, res, next)));
  return app;
}

/** Append the 404 for unmatched routes and the problem+json error handler; call after every router. */
export function finishApp(app: Express, logger: PinoLogger): Express {
  app.use(routeNotFound);
  app.use(problemHandler(logger));
  return app;
}
