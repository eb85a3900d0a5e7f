/**
 * The one server lifecycle both hosts use. Start order:
 *
 *   check config -> open the database -> the host's migrations -> create the relay (the outbox's and the
 *   plugins' migrations) -> build the app -> listen -> start dispatching
 *
 * Dispatching starts last, once the port is bound: a host that cannot listen (port taken, bad address)
 * fails before it has claimed a single delivery, so a failed start leaves no lease behind and sends nothing
 * on behalf of a process that never came up; and the routes can already publish (the outbox write does not
 * need a running dispatcher), so nothing is lost in between.
 *
 * `close()` is the reverse and safe to call twice: stop accepting and let requests in progress finish,
 * drain and stop the relay (bounded by `stopTimeoutMs`, else the library's default), close the database.
 * Installs no signal handlers: the CLI owns the process.
 */
import { mkdirSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import path from 'node:path';
import type { Express } from 'express';
import type { Registry } from 'prom-client';
import { openDatabase } from '../../lib/db.js';
import type { Database } from '../../lib/db.js';
import type { Logger } from '../../lib/logger.js';
import { HttpProblem, problemJson, problemTitle } from '../../lib/http/problem.js';
import { createRelay } from '../../lib/relay.js';
import type { Relay, RelayOptions } from '../../lib/relay.js';
import type { TargetPlugin } from '../../lib/target.js';
import { ConfigError } from './config.js';
import type { ResolvedConfig } from './config.js';
import type { PinoLogger } from './logging.js';
import { JSON_CSP } from './app.js';
import { checkSigningSecret } from './signature.js';

/** Requests still running this long after close begins are cut rather than holding shutdown open. */
const REQUEST_DRAIN_MS = 5_000;

export interface ListenOptions {
  /** Listen address (127.0.0.1); `0.0.0.0` to accept other machines. */
  host?: string;
  /** Bound on draining in-flight deliveries at close (the library's default when unset). */
  stopTimeoutMs?: number;
}

export interface RunningHost {
  /** The bound URL (a loopback address when listening on every interface). */
  url: string;
  port: number;
  app: Express;
  relay: Relay;
  db: Database;
  server: Server;
  close(): Promise<void>;
}

export interface HostSetup extends ListenOptions {
  config: ResolvedConfig;
  logger: PinoLogger;
  registry: Registry;
  /** The host's own schema. */
  migrate(db: Database): Promise<unknown>;
  /** The relay's targets, and the app to build around the relay once it exists. */
  compose(db: Database): { targets: TargetPlugin[]; app(relay: Relay): Express };
  /** Logged once as a warning when the host listens on a non-loopback address (an open API on the network). */
  exposedWarning?: string;
  /** The "listening" log line's fields, message and notes (appended to the message after the targets). */
  announce(url: string, db: Database): [fields: object, message: string, notes?: string[]];
}

/** The relay options a host or a worker derives from its configuration. */
export function relayOptionsFor(
  config: ResolvedConfig,
  db: Database,
  targets: TargetPlugin[],
  logger: Logger,
  registry?: Registry,
): RelayOptions {
  return { db, targets, logger, registry, dispatcher: { requestTimeoutMs: config.forward.timeoutMs }, retentionDays: config.retentionDays };
}

export async function startHost(s: HostSetup): Promise<RunningHost> {
  const { config, logger } = s;
  checkSigningSecret(config.mentorSigningSecret);
  ensureSqliteDirectory(config.databaseUrl);
  const db = openDatabase(config.databaseUrl, { sqliteSynchronous: config.sqliteSynchronous });
  let relay: Relay | undefined;
  let server: Server | undefined;
  try {
    await checkOwnDatabase(db, config.service);
    await s.migrate(db);
    const parts = s.compose(db);
    relay = await createRelay(relayOptionsFor(config, db, parts.targets, logger, s.registry));
    const app = parts.app(relay);
    server = await listen(app, config, s.host ?? '127.0.0.1', logger);
    // RELAY_DISPATCH=false: this host only writes the outbox; workers on the same database deliver.
    if (config.dispatch) await relay.start();
    else logger.info('dispatching is off on this host (RELAY_DISPATCH=false): raqeem-relay worker processes deliver its outbox');
    const { port, address } = server.address() as AddressInfo;
    const shown = s.host && s.host !== '0.0.0.0' && s.host !== '::' ? s.host : '127.0.0.1';
    const url = `http://${shown.includes(':') ? `[${shown}]` : shown}:${port}`;
    logger.info(...startupLine(s.announce(boundUrl(address, port), db), relay, config.dispatch));
    if (s.exposedWarning && !isLoopback(s.host ?? '127.0.0.1')) logger.warn({ host: s.host }, s.exposedWarning);
    return { url, port, app, relay, db, server, close: closer(server, relay, db, logger, s) };
  } catch (err) {
    if (server) await closeServer(server);
    // Nothing is in flight yet (dispatching starts last), so the stop is immediate.
    await relay?.stop().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw err;
  }
}

function closer(server: Server, relay: Relay, db: Database, logger: PinoLogger, s: HostSetup): () => Promise<void> {
  let closing: Promise<void> | null = null;
  return () =>
    (closing ??= (async () => {
      await closeServer(server);
      await relay.stop(s.stopTimeoutMs === undefined ? undefined : { timeoutMs: s.stopTimeoutMs });
      await db.close().catch((err: unknown) => logger.warn({ err: { message: (err as Error).message } }, 'closing the database failed'));
      logger.info({}, `${s.config.service} host stopped`);
    })());
}

/** Each host's migration history table: its presence marks a database as that host's. */
const HISTORY_TABLES = { devices: 'devices_migrations', mentor: 'mentor_migrations' } as const;

/**
 * Refuse, before any migration touches it, a database that already holds the other host's tables: the two
 * schemas share table names (`processes_device`, the outbox), so migrating one over the other fails half
 * way and leaves the second host's history table behind.
 */
export async function checkOwnDatabase(db: Database, service: 'devices' | 'mentor'): Promise<void> {
  const other = service === 'devices' ? 'mentor' : 'devices';
  const tables = (await db.sequelize.getQueryInterface().showAllTables()).map((t) =>
    typeof t === 'string' ? t : (t as { tableName: string }).tableName,
  );
  if (tables.includes(HISTORY_TABLES[other])) {
    throw new ConfigError(
      `Invalid configuration: DATABASE_URL holds the ${other} host's tables; each host needs its own database: give the ${service} host a DATABASE_URL of its own (nothing was changed)`,
    );
  }
}

/** The address the server really listens on (`0.0.0.0` when it accepts every interface), as a URL. */
export function boundUrl(address: string, port: number): string {
  return `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
}

/**
 * The start-up line: the host's own fields and message, then where it listens, which targets it delivers to
 * and which `FORWARD_*` toggles are off, in the message too, so one line answers "is it forwarding?".
 */
export function startupLine(
  [fields, message, notes = []]: [fields: object, message: string, notes?: string[]],
  relay: Relay,
  dispatching: boolean,
): [fields: object, message: string] {
  const targets = relay.targets.map((t) => t.name);
  const togglesOff = (fields as { togglesOff?: string[] }).togglesOff ?? [];
  const parts = [
    targets.length ? `targets: ${targets.join(', ')}${dispatching ? '' : ' (delivered by workers)'}` : 'no targets',
    ...(togglesOff.length ? [`off: ${togglesOff.join(', ')}`] : []),
    ...notes,
  ];
  const url = (fields as { url?: string }).url;
  return [{ ...fields, targets }, `${message}${url ? ` on ${url}` : ''}; ${parts.join('; ')}`];
}

/** Whether a listen address only accepts this machine (`0.0.0.0` and `::` accept every interface). */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(h);
}

/** An embedded SQLite file's directory may not exist yet on a first start. */
function ensureSqliteDirectory(databaseUrl: string): void {
  const file = databaseUrl.startsWith('sqlite:') ? databaseUrl.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '') : '';
  if (file && file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
}

/** How often Node checks the header and request deadlines (its default, 30 s, would let a slowloris linger). */
const DEADLINE_CHECK_MS = 1_000;

function listen(app: Express, config: ResolvedConfig, host: string, logger: PinoLogger): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer(
      {
        headersTimeout: config.http.headersTimeoutMs,
        requestTimeout: config.http.requestTimeoutMs,
        keepAliveTimeout: config.http.keepAliveTimeoutMs,
        connectionsCheckingInterval: DEADLINE_CHECK_MS,
      },
      app,
    );
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => answerClientError(err, socket, logger));
    server.listen(config.port, host);
    server.once('listening', () => {
      server.off('error', reject);
      resolve(server);
    });
    server.once('error', reject);
  });
}

/** The errors Node answers itself (malformed request, headers too large, too slow), as problem+json. */
function clientProblem(err: NodeJS.ErrnoException): HttpProblem {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new HttpProblem(431, 'The request headers are larger than the server accepts');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new HttpProblem(408, 'The request was not received in time (HTTP_HEADERS_TIMEOUT / HTTP_REQUEST_TIMEOUT)');
    default:
      return new HttpProblem(400, 'The request is not valid HTTP/1.1');
  }
}

/** Write a minimal complete response, then close: the connection's parser state cannot be trusted. */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket, logger: PinoLogger): void {
  logger.debug({ code: err.code }, 'client error');
  const inResponse = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
  if (err.code === 'ECONNRESET' || !socket.writable || inResponse) {
    socket.destroy();
    return;
  }
  const p = clientProblem(err);
  const body = problemJson(p);
  socket.end(
    `HTTP/1.1 ${p.status} ${problemTitle(p.status)}\r\n` +
      'Content-Type: application/problem+json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'X-Content-Type-Options: nosniff\r\n' +
      `Content-Security-Policy: ${JSON_CSP}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
    () => socket.destroy(),
  );
}

/** Stop accepting, let requests in progress finish, then drop idle keep-alive sockets. */
async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const force = setTimeout(() => server.closeAllConnections(), REQUEST_DRAIN_MS);
  await closed;
  clearTimeout(force);
}
