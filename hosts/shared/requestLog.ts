/**
 * Request ids and the access log: one line per answered request, at info for 2xx/3xx, warn for 4xx and
 * error for 5xx (health probes and scrapes excepted), with the request redacted by `redactRequest`.
 *
 * pino-http writes those lines, but it prepares for one on every request: a child logger bound to the
 * request, whose bindings (the request serialised, redacted and stringified) are built up front, and three
 * listeners on the response. At LOG_LEVEL warn or above no 2xx line is ever written, and that preparation
 * was about 100 µs of CPU per request on a devices host (CPU profile at 300 req/s: pino, pino-http and
 * their serializers ~530 ms per 4,500 requests, forwarding or not). So when info is off (LOG_LEVEL warn,
 * error, silent) the middleware here gives the same lines and the same `req.id`/`req.log`, but builds the
 * child only when something logs through it: a handler's `req.log.warn(...)`, or a 4xx/5xx answer. At
 * info and debug pino-http runs as it is.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import type { Level, Logger as PinoLogger } from 'pino';
import { pinoHttp } from 'pino-http';
import { redactRequest } from './logging.js';

const levelOf = (res: ServerResponse, err?: Error): Level => {
  if (err || res.statusCode >= 500) return 'error';
  if (res.statusCode >= 400) return 'warn';
  return 'info';
};

// Health probes and scrapes would drown the log.
const ignored = (req: IncomingMessage) => /^\/(health|metrics)/.test(req.url ?? '');

/**
 * The access-log middleware; `genReqId` assigns `req.id` (and sets `X-Request-ID`) on every request.
 */
export function requestLogging(logger: PinoLogger, genReqId: (req: IncomingMessage, res: ServerResponse) => string): RequestHandler {
  const full = pinoHttp({
    logger,
    genReqId,
    customLogLevel: (_req, res, err) => levelOf(res, err),
    autoLogging: { ignore: ignored },
    serializers: { req: redactRequest },
  });
  if (logger.isLevelEnabled('info')) return full;
  // The logger pino-http logs through (its serializers wrapped around the standard ones): the lines below
  // are the ones it would write.
  const base = full.logger;
  // Below error (silent) no access line can be written; the 'error' listener stays, as pino-http's does.
  const lines = base.isLevelEnabled('error');
  return (req, res, next) => {
    const startedAt = Date.now();
    req.id = req.id || genReqId(req, res);
    // What pino-http's child would have serialised now: the request as it came in (the route's params and
    // a closed socket's address are not known, or no longer known, when the child is built later).
    const socket = req.socket;
    const view = {
      id: req.id,
      method: req.method,
      originalUrl: req.originalUrl,
      get query() {
        return req.query;
      },
      params: req.params && { ...req.params },
      headers: req.headers,
      socket: { remoteAddress: socket?.remoteAddress, remotePort: socket?.remotePort },
    };
    let child: PinoLogger | undefined;
    const log = () => (child ??= base.child({ req: view }));
    Object.defineProperty(req, 'log', {
      configurable: true,
      enumerable: true,
      get: log,
      set: (v: PinoLogger) => (child = v),
    });
    const done = (err?: Error) => {
      res.removeListener('close', done);
      res.removeListener('finish', done);
      res.removeListener('error', done);
      const level = levelOf(res, err);
      if (!base.isLevelEnabled(level)) return;
      const responseTime = Date.now() - startedAt;
      if (err || res.statusCode >= 500) {
        const error = err ?? new Error(`failed with status code ${res.statusCode}`);
        log()[level]({ res, err: error, responseTime }, 'request errored');
        return;
      }
      log()[level]({ res, responseTime }, !req.readableAborted && res.writableEnded ? 'request completed' : 'request aborted');
    };
    if (lines && !ignored(req)) {
      res.on('close', done);
      res.on('finish', done);
    }
    res.on('error', done);
    next();
  };
}
