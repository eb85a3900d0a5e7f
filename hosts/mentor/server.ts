/**
 * Start the mentor host: open the database, apply the mentor and outbox migrations, start the relay that
 * delivers `command.created` to the devices host (none when `DEVICES_API_URL` is unset), and listen.
 * `close()` stops accepting, drains the relay and closes the database; it is safe to call twice.
 */
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { Registry } from 'prom-client';
import { ConfigError } from '../shared/config.js';
import type { ResolvedConfig } from '../shared/config.js';
import { openDatabase } from '../../lib/db.js';
import type { Database } from '../../lib/db.js';
import { createLogger } from '../shared/logging.js';
import type { PinoLogger } from '../shared/logging.js';
import { runMigrations } from '../../lib/migrate.js';
import { createRelay } from '../../lib/relay.js';
import type { Relay } from '../../lib/relay.js';
import { sign } from '../../lib/signing.js';
import { devicesCommandTarget } from '../../plugins/mentor.js';
import { createMentorApp } from './app.js';
import { mentorMigrations } from './migrations.js';

export interface MentorHost {
  url: string;
  port: number;
  app: Express;
  relay: Relay;
  db: Database;
  close(): Promise<void>;
}

export interface StartOptions {
  logger?: PinoLogger;
  /** Listen address (127.0.0.1); `0.0.0.0` to accept other machines. */
  host?: string;
}

const DRAIN_MS = 5_000;

export async function migrateMentor(db: Database): Promise<string[]> {
  return runMigrations(db, mentorMigrations, 'mentor_migrations');
}

/** A malformed secret would make every signed request a 500; refuse it at start-up, naming the variable. */
function checkSigningSecret(secret: string | undefined): void {
  if (!secret) return;
  try {
    sign({ id: 'check', timestamp: 0, body: '', secret });
  } catch {
    throw new ConfigError('Invalid configuration: MENTOR_SIGNING_SECRET must be whsec_ followed by base64 (see generateSecret())');
  }
}

export async function startMentorHost(config: ResolvedConfig, options: StartOptions = {}): Promise<MentorHost> {
  checkSigningSecret(config.mentorSigningSecret);
  const sqliteFile = config.databaseUrl.startsWith('sqlite:') ? config.databaseUrl.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '') : '';
  if (sqliteFile && sqliteFile !== ':memory:') mkdirSync(path.dirname(path.resolve(sqliteFile)), { recursive: true });
  const logger = options.logger ?? createLogger({ level: config.logLevel, service: 'mentor' });
  const db = openDatabase(config.databaseUrl);
  try {
    await migrateMentor(db);
    const registry = new Registry();
    const targets = config.devicesApiUrl
      ? [
          devicesCommandTarget({
            url: config.devicesApiUrl,
            signingSecret: config.mentorSigningSecret,
            maxRetries: config.forward.maxRetries,
            backoffBaseMs: config.forward.backoffBaseMs,
          }),
        ]
      : [];
    const relay = await createRelay({
      db,
      targets,
      logger,
      registry,
      dispatcher: { requestTimeoutMs: config.forward.timeoutMs },
      retentionDays: config.retentionDays,
    });
    const app = createMentorApp({ config, db, relay, logger, registry });
    const server = http.createServer(app);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, options.host ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    // RELAY_DISPATCH=false: this host only writes the outbox; workers on the same database deliver.
    if (config.dispatch) await relay.start();
    else logger.info('dispatching is off on this host (RELAY_DISPATCH=false): raqeem-relay worker processes deliver its outbox');

    const { port } = server.address() as AddressInfo;
    const shown = options.host === undefined || options.host === '0.0.0.0' || options.host === '::' ? '127.0.0.1' : options.host;
    const url = `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`;
    logger.info({ url, devicesApiUrl: config.devicesApiUrl ?? null, signing: Boolean(config.mentorSigningSecret) }, 'mentor host listening');

    let closing: Promise<void> | null = null;
    const close = () =>
      (closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        const force = setTimeout(() => server.closeAllConnections(), DRAIN_MS);
        await closed;
        clearTimeout(force);
        await relay.stop({ timeoutMs: DRAIN_MS });
        await db.close();
        logger.info({}, 'mentor host stopped');
      })());
    return { url, port, app, relay, db, close };
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
}
