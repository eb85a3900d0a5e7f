/**
 * Start the devices host: open the database, apply the relay's and the host's migrations, create the relay
 * (the mentor target when `MENTOR_API_URL` is set, standalone otherwise, and the webhook subscribers),
 * mount the device API and the management API, start dispatching and listen. Installs no signal handlers:
 * the CLI owns the process.
 */
import { mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { Registry } from 'prom-client';
import type { Logger as PinoLogger } from 'pino';
import { ConfigError } from '../../lib/config.js';
import type { ResolvedConfig } from '../../lib/config.js';
import { openDatabase } from '../../lib/db.js';
import type { Database } from '../../lib/db.js';
import { managementDocs, managementRouter } from '../../lib/http/management.js';
import { createLogger } from '../../lib/logging.js';
import { runMigrations } from '../../lib/migrate.js';
import { createRelay } from '../../lib/relay.js';
import type { Relay } from '../../lib/relay.js';
import { sign } from '../../lib/signing.js';
import { webhooksManagement } from '../../plugins/webhooks/index.js';
import { createDevicesApp } from './app.js';
import { devicesMigrations } from './migrations.js';
import { republish } from './reconcile.js';
import { devicesTargets } from './targets.js';

export interface DevicesHostOptions {
  logger?: PinoLogger;
  /** Listen address (127.0.0.1); `0.0.0.0` to accept other machines. */
  host?: string;
  registry?: Registry;
  /** Bound on draining in-flight deliveries at close (default 10 s). */
  stopTimeoutMs?: number;
}

export interface DevicesHost {
  url: string;
  port: number;
  app: Express;
  relay: Relay;
  db: Database;
  server: Server;
  close(): Promise<void>;
}

/** Fail at start-up, naming the variable, rather than on the first signed request. */
function checkSigningSecret(secret: string | undefined): void {
  if (!secret) return;
  try {
    sign({ id: 'check', timestamp: 0, body: '', secret });
  } catch {
    throw new ConfigError('Invalid configuration: MENTOR_SIGNING_SECRET must be whsec_ followed by base64 (generate one with `raqeem-relay` or generateSecret())');
  }
}

export async function startDevicesHost(config: ResolvedConfig, options: DevicesHostOptions = {}): Promise<DevicesHost> {
  checkSigningSecret(config.mentorSigningSecret);
  const logger = options.logger ?? createLogger({ level: config.logLevel, service: 'devices' });
  const registry = options.registry ?? new Registry();
  mkdirSync(config.dataDir, { recursive: true });
  const db = openDatabase(config.databaseUrl);
  let relay: Relay | undefined;
  try {
    const { targets, webhooks } = devicesTargets(config, db, logger);
    relay = await createRelay({
      db,
      targets,
      logger,
      registry,
      dispatcher: { requestTimeoutMs: config.forward.timeoutMs },
      retentionDays: config.retentionDays,
    });
    await runMigrations(db, devicesMigrations, 'devices_migrations');
    // RELAY_DISPATCH=false: this host only writes the outbox; workers on the same database deliver.
    if (config.dispatch) await relay.start();
    else logger.info('dispatching is off on this host (RELAY_DISPATCH=false): raqeem-relay worker processes deliver its outbox');
    const r0 = relay;
    const extensions = [webhooksManagement({ webhooks, relay: r0, logger })];
    const management = managementRouter({
      relay: r0,
      adminToken: config.adminToken,
      republish: (o) => republish(db, r0, o),
      logger,
      bodyLimit: config.bodyLimit,
      extensions,
    });
    const app = createDevicesApp({ config, db, relay, logger, registry, extraRouters: [management], extraDocs: managementDocs(extensions) });
    const server = await listen(app, config.port, options.host ?? '127.0.0.1');
    const port = (server.address() as AddressInfo).port;
    const host = options.host && options.host !== '0.0.0.0' && options.host !== '::' ? options.host : '127.0.0.1';
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    logger.info({ url, mentor: config.mentorApiUrl ?? null, dialect: db.dialect }, config.mentorApiUrl ? 'devices host listening' : 'devices host listening (standalone: no MENTOR_API_URL)');
    const r = relay;
    let closing: Promise<void> | null = null;
    return {
      url,
      port,
      app,
      relay: r,
      db,
      server,
      close: () =>
        (closing ??= (async () => {
          await closeServer(server);
          await r.stop({ timeoutMs: options.stopTimeoutMs ?? 10_000 });
          await db.close().catch((err: unknown) => logger.warn({ err: { message: (err as Error).message } }, 'closing the database failed'));
        })()),
    };
  } catch (err) {
    await relay?.stop({ timeoutMs: 1000 }).catch(() => undefined);
    await db.close().catch(() => undefined);
    throw err;
  }
}

function listen(app: Express, port: number, host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = app.listen(port, host);
    server.once('listening', () => resolve(server));
    server.once('error', reject);
  });
}

/** Stop accepting, let requests in progress finish, then drop idle keep-alive sockets. */
function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeIdleConnections();
    // Requests still running after 5 s are cut rather than holding shutdown open.
    setTimeout(() => server.closeAllConnections(), 5000).unref();
  });
}
