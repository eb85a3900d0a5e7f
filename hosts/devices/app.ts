/** The devices host's Express app: ops endpoints, the `/api/v1` device API, and routers the host adds. */
import type { Express, Router } from 'express';
import type { Registry } from 'prom-client';
import type { Logger as PinoLogger } from 'pino';
import { z } from 'zod';
import type { ResolvedConfig } from '../shared/config.js';
import type { Database } from '../../lib/db.js';
import { createBaseApp, finishApp } from '../shared/app.js';
import { buildOpenApi, OPS_ROUTES } from '../../lib/http/openapi.js';
import type { RouteDoc } from '../../lib/http/openapi.js';
import { mountOps } from '../shared/ops.js';
import { HOME_ROUTES, mountHome } from '../shared/home.js';
import type { Relay } from '../../lib/relay.js';
import { activitiesDocs, activitiesRouter } from './routes/activities.js';
import { alertsDocs, alertsRouter } from './routes/alerts.js';
import { commandsDocs, commandsRouter } from './routes/commands.js';
import { devicesDocs, devicesRouter } from './routes/devices.js';
import { listsDocs, listsRouter } from './routes/lists.js';
import { metricsDocs, metricsRouter } from './routes/metrics.js';
import { processesDocs, processesRouter } from './routes/processes.js';
import { screenshotsDocs, screenshotsRouter } from './routes/screenshots.js';
import { commandParams, deviceParams, screenshotParams } from './schemas.js';
import type { DevicesContext } from './store/ingest.js';
import { deviceRateLimit } from './rateLimit.js';

export const API_PREFIX = '/api/v1';

export const DEVICES_DOCS: RouteDoc[] = [
  ...listsDocs,
  ...devicesDocs,
  ...metricsDocs,
  ...processesDocs,
  ...activitiesDocs,
  ...alertsDocs,
  ...screenshotsDocs,
  ...commandsDocs,
];

/** The path parameters of the device API, as the routes validate them. */
const PATH_PARAMS = z.object({ ...deviceParams.shape, ...commandParams.shape, ...screenshotParams.shape });

export interface DevicesAppOptions {
  config: ResolvedConfig;
  db: Database;
  relay: Relay;
  logger: PinoLogger;
  /** The Prometheus registry the relay registered its metrics on. */
  registry: Registry;
  /** More routers under `/api/v1` (webhooks, deliveries, reconcile), mounted after the device API. */
  extraRouters?: Router[];
  /** Their OpenAPI descriptors (paths relative to `/api/v1`). */
  extraDocs?: RouteDoc[];
  /** Path prefixes under `/api/v1` whose router parses the body after authenticating (`managementPaths`). */
  parsedByRouters?: readonly string[];
  /** Routers mounted at the root (the console: `/console`, its assets and session routes). */
  rootRouters?: Router[];
  /** Their OpenAPI descriptors (full paths). */
  rootDocs?: RouteDoc[];
}

export function createDevicesApp({
  config,
  db,
  relay,
  logger,
  registry,
  extraRouters = [],
  extraDocs = [],
  parsedByRouters = [],
  rootRouters = [],
  rootDocs = [],
}: DevicesAppOptions): Express {
  const app = createBaseApp({
    service: 'devices',
    logger,
    bodyLimit: config.bodyLimit,
    parsedByRouters: parsedByRouters.map((p) => API_PREFIX + p),
    corsOrigins: config.corsOrigins,
    corsMethods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
  });
  mountOps(app, {
    service: 'devices',
    db,
    registry,
    openapi: () =>
      buildOpenApi(
        {
          title: 'raqeem-relay devices host',
          version: '0.1.0',
          description: 'Device telemetry ingestion, forwarded to the mentor and to webhook subscribers.',
        },
        [
          { prefix: API_PREFIX, routes: [...DEVICES_DOCS, ...extraDocs], params: PATH_PARAMS },
          { prefix: '', routes: [...HOME_ROUTES, ...OPS_ROUTES, ...rootDocs] },
        ],
      ),
  });
  mountHome(app, { service: 'devices', console: rootRouters.length > 0 });
  for (const router of rootRouters) app.use(router);
  const ctx: DevicesContext = { db, relay, config, logger };
  if (config.deviceRateLimit !== undefined) app.use(`${API_PREFIX}/devices/:id`, deviceRateLimit(config.deviceRateLimit));
  // listsRouter first: its `/devices/processes` would otherwise be taken for the device `processes`.
  for (const router of [
    listsRouter,
    devicesRouter,
    metricsRouter,
    processesRouter,
    activitiesRouter,
    alertsRouter,
    screenshotsRouter,
    commandsRouter,
  ]) {
    app.use(API_PREFIX, router(ctx));
  }
  for (const router of extraRouters) app.use(API_PREFIX, router);
  return finishApp(app, logger);
}
