/**
 * Start the devices host: its migrations, the relay (the mentor target when `MENTOR_API_URL` is set,
 * standalone otherwise, and the webhook subscribers), the device API and the management API, through the
 * shared lifecycle (hosts/shared/server.ts: start order, bound URL, graceful close).
 */
import { mkdirSync } from 'node:fs';
import { Registry } from 'prom-client';
import type { Database } from '../../lib/db.js';
import { DEVICE_EVENTS } from '../../lib/events.js';
import { ConsoleSessions, managementDocs, managementPaths, managementRouter } from '../../lib/http/management.js';
import { runMigrations } from '../../lib/migrate.js';
import type { Relay } from '../../lib/relay.js';
import { webhooksManagement } from '../../plugins/webhooks/index.js';
import type { ResolvedConfig } from '../shared/config.js';
import { createLogger, secretsOf } from '../shared/logging.js';
import type { PinoLogger } from '../shared/logging.js';
import { startHost } from '../shared/server.js';
import type { ListenOptions, RunningHost } from '../shared/server.js';
import { CONSOLE_ROUTES, consoleRouter, portalLinkExtension } from '../console/routes.js';
import { createDevicesApp } from './app.js';
import { devicesMigrations } from './migrations.js';
import { republish } from './reconcile.js';
import { devicesTargets } from './targets.js';
import type { WebhookOverrides } from './targets.js';

export interface DevicesHostOptions extends ListenOptions {
  logger?: PinoLogger;
  registry?: Registry;
  /** Webhook retry schedule (ms) and circuit timings; tests use short ones, the defaults are the plugin's. */
  webhooks?: WebhookOverrides;
}

export type DevicesHost = RunningHost;

export function migrateDevices(db: Database): Promise<string[]> {
  return runMigrations(db, devicesMigrations, 'devices_migrations');
}

export async function startDevicesHost(config: ResolvedConfig, options: DevicesHostOptions = {}): Promise<DevicesHost> {
  const logger = options.logger ?? createLogger({ level: config.logLevel, service: 'devices', secrets: secretsOf(config) });
  // Screenshots are kept under DATA_DIR.
  mkdirSync(config.dataDir, { recursive: true });
  const registry = options.registry ?? new Registry();
  return startHost({
    ...options,
    config,
    logger,
    registry,
    migrate: migrateDevices,
    compose(db) {
      const { targets, webhooks } = devicesTargets(config, db, logger, options.webhooks);
      // Console sessions and portal links (in this process's memory; see lib/http/session.ts).
      const sessions = new ConsoleSessions({ adminToken: config.adminToken });
      const app = (relay: Relay) => {
        const consoleDeps = { sessions, webhooks, logger };
        const extensions = [webhooksManagement({ webhooks, relay, logger }), portalLinkExtension(consoleDeps)];
        const management = managementRouter({
          sessions,
          relay,
          adminToken: config.adminToken,
          republish: (o) => republish(db, relay, o),
          logger,
          bodyLimit: config.bodyLimit,
          extensions,
        });
        return createDevicesApp({
          config,
          db,
          relay,
          logger,
          registry,
          extraRouters: [management],
          extraDocs: managementDocs(extensions),
          parsedByRouters: managementPaths(extensions),
          rootRouters: [consoleRouter(consoleDeps)],
          rootDocs: CONSOLE_ROUTES,
        });
      };
      return { targets, app };
    },
    exposedWarning:
      config.deviceAuth === 'none'
        ? "the devices host listens on a non-loopback address with DEVICE_AUTH=none: anyone who can reach it can post data as any device and read every device's metrics, processes and screenshots (set DEVICE_AUTH=token)"
        : undefined,
    announce: (url, db) => [
      {
        url,
        mentor: config.mentorApiUrl ?? null,
        dialect: db.dialect,
        // Forwarding to the mentor switched off per type: named at start, so a missing type is not a mystery.
        togglesOff: DEVICE_EVENTS.filter((e) => !config.forward.toggles[e.type]).map((e) => e.toggle),
      },
      'devices host listening',
      config.mentorApiUrl ? [] : ['standalone: no MENTOR_API_URL'],
    ],
  });
}
