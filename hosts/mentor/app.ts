/**
 * The mentor's Express app: the shared base (request ids, logging, raw-body JSON), the operations
 * endpoints, then ingest, commands and the read API. Thin by design: routes validate and call the store.
 */
import type { Express } from 'express';
import type { Registry } from 'prom-client';
import type { Logger as PinoLogger } from 'pino';
import type { ResolvedConfig } from '../shared/config.js';
import type { Database } from '../../lib/db.js';
import { createBaseApp, finishApp } from '../shared/app.js';
import { buildOpenApi, OPS_ROUTES } from '../../lib/http/openapi.js';
import { mountOps } from '../shared/ops.js';
import { HOME_ROUTES, mountHome } from '../shared/home.js';
import type { Relay } from '../../lib/relay.js';
import { COMMAND_CREATE_PATHS, commandRoutes, commandsRouter } from './routes/commands.js';
import { requireAdminToken } from '../../lib/http/auth.js';
import { ingestRouter, ingestRoutes, SCREENSHOT_INGEST_PATH } from './routes/ingest.js';
import { readRouter, readRoutes } from './routes/read.js';

export interface MentorAppDeps {
  config: ResolvedConfig;
  db: Database;
  relay: Relay;
  logger: PinoLogger;
  registry: Registry;
}

export function mentorOpenApi(): Record<string, unknown> {
  return buildOpenApi(
    {
      title: 'raqeem-relay mentor host',
      version: '0.1.0',
      description:
        'The central store: receives forwards from the devices host idempotently (keyed by origin record id), serves the ' +
        'dashboards read API and originates remote commands. With MENTOR_SIGNING_SECRET set, ingest routes require a ' +
        'Standard Webhooks signature.',
    },
    [{ prefix: '', routes: [...HOME_ROUTES, ...OPS_ROUTES, ...ingestRoutes, ...commandRoutes, ...readRoutes] }],
  );
}

export function createMentorApp({ config, db, relay, logger, registry }: MentorAppDeps): Express {
  // Creating a command takes the admin token when one is set, checked before the body is read.
  const guardsBeforeBody = config.adminToken
    ? COMMAND_CREATE_PATHS.map((path) => ({ path, guard: requireAdminToken(config.adminToken!) }))
    : [];
  const app = createBaseApp({
    service: 'mentor',
    logger,
    bodyLimit: config.bodyLimit,
    guardsBeforeBody,
    corsOrigins: config.corsOrigins,
    // Screenshot records carry their image, beyond BODY_LIMIT: that route parses its own body.
    parsedByRouters: [SCREENSHOT_INGEST_PATH],
  });
  mountOps(app, { service: 'mentor', db, registry, openapi: mentorOpenApi });
  mountHome(app, { service: 'mentor', console: false });
  app.use(ingestRouter(db, config.mentorSigningSecret, { bodyLimit: config.bodyLimit, screenshotMaxBytes: config.screenshotMaxBytes }));
  app.use(commandsRouter(db, relay, config.mentorSigningSecret));
  app.use(readRouter(db, { readToken: config.mentorReadToken, publicUrl: config.mentorPublicUrl }));
  return finishApp(app, logger);
}
