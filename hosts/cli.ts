#!/usr/bin/env node
/**
 * `raqeem-relay devices | mentor | worker | demo | simulate | reconcile | migrate | secret | rotate-key` (SPEC section 11).
 * Every command reads its configuration with `loadConfig`; an invalid one stops it with ONE line on stderr
 * and exit code 1 (usage errors exit 2). Long-running commands shut down gracefully on SIGTERM/SIGINT: a
 * second signal, or a shutdown that overruns, exits at once.
 */
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { ConfigError, loadConfig } from './shared/config.js';
import type { ResolvedConfig } from './shared/config.js';
import { openDatabase } from '../lib/db.js';
import { createLogger, secretsOf } from './shared/logging.js';
import { checkOwnDatabase, relayOptionsFor } from './shared/server.js';
import { createRelay } from '../lib/relay.js';
import { RECONCILE_TYPES, republish } from './devices/reconcile.js';
import { migrateMentor, startMentorHost } from './mentor/server.js';
import { runDemo } from './demo.js';
import { migrateDevices, startDevicesHost } from './devices/server.js';
import { devicesTargets } from './devices/targets.js';
import { runSimulation, printSummary } from './simulate.js';
import { HELP, USAGE } from './cliHelp.js';
import { generateSecret } from '../lib/signing.js';
import { checkSigningSecret } from './shared/signature.js';

class UsageError extends Error {}

/**
 * How far V8 lets the old generation grow past what survived the last full collection before it collects
 * again, in percent (RELAY_HEAP_GROWING_PERCENT; 0 leaves V8's own heuristic). V8 grows it by up to 4x when
 * collection is cheap, which it is for these hosts: under steady ingest about 30 MB survive each full
 * collection and the old generation fills to about 120 MB of garbage before the next one, the whole
 * 200+ MB RSS peak. At 50 it peaks near 45 MB, for about 1% more CPU in the collector (docs/operations.md).
 */
const DEFAULT_HEAP_GROWING_PERCENT = 50;
const LONG_RUNNING = new Set(['devices', 'mentor', 'worker', 'demo']);

/**
 * Applied by the CLI for its own process only (the library never changes V8 flags of a process it is
 * embedded in). A `--heap-growing-percent` given to node on its command line wins.
 */
function boundHeapGrowth(): void {
  if (process.execArgv.some((a) => /^--heap[-_]growing[-_]percent(=|$)/.test(a))) return;
  const raw = process.env.RELAY_HEAP_GROWING_PERCENT?.trim();
  const percent = raw ? Number(raw) : DEFAULT_HEAP_GROWING_PERCENT;
  if (!Number.isInteger(percent) || percent < 0 || percent > 1000) {
    throw new ConfigError(
      `Invalid configuration: RELAY_HEAP_GROWING_PERCENT must be a whole number from 0 to 1000 (got ${JSON.stringify(raw)})`,
    );
  }
  // Read by V8 at every full collection, so setting it now, before the load, is as good as at start-up.
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}

type Stop = () => Promise<void>;

/** SIGTERM/SIGINT: stop gracefully once; a second signal or a stuck shutdown exits at once. */
function stopOnSignals(stop: Stop, graceMs = 30_000): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    process.stderr.write(`raqeem-relay: ${signal} received, shutting down\n`);
    setTimeout(() => process.exit(1), graceMs).unref();
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`raqeem-relay: shutdown failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

const hostFlag = { host: { type: 'string' } } as const;
const listenHost = (flag: string | undefined, fallback: string) => flag ?? (process.env.HOST?.trim() || fallback);

async function devices(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: hostFlag, strict: true });
  const config = loadConfig('devices');
  const host = await startDevicesHost(config, { host: listenHost(values.host, '0.0.0.0') });
  stopOnSignals(() => host.close());
}

async function mentor(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: hostFlag, strict: true });
  const config = loadConfig('mentor');
  const host = await startMentorHost(config, { host: listenHost(values.host, '0.0.0.0') });
  stopOnSignals(() => host.close());
}

/**
 * A dispatcher with no HTTP server: scale-out for the devices outbox (every process on one PostgreSQL).
 * It delivers to the mentor (when MENTOR_API_URL is set) and to webhook subscribers; it claims only
 * deliveries of the targets it has, so it never takes work it cannot do.
 */
async function worker(args: string[]): Promise<void> {
  parseArgs({ args, options: {}, strict: true });
  const config = loadConfig('devices');
  checkSigningSecret(config.mentorSigningSecret);
  const logger = createLogger({ level: config.logLevel, service: 'worker', secrets: secretsOf(config) });
  const db = openDatabase(config.databaseUrl, { sqliteSynchronous: config.sqliteSynchronous });
  const relay = await createRelay(relayOptionsFor(config, db, devicesTargets(config, db, logger).targets, logger));
  await relay.start();
  const targets = relay.targets.map((t) => t.name);
  logger.info({ targets, mentor: config.mentorApiUrl ?? null, dialect: db.dialect }, `worker dispatching to ${targets.join(' and ')}`);
  stopOnSignals(async () => {
    await relay.stop();
    await db.close();
  });
}

async function reconcile(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { since: { type: 'string' }, types: { type: 'string' } }, strict: true });
  if (!values.since || !Number.isFinite(Date.parse(values.since)))
    throw new UsageError('reconcile needs --since <ISO-8601 time>, e.g. --since 2025-01-01T00:00:00Z');
  const types = values.types
    ?.split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  const unknown = (types ?? []).filter((t) => !(RECONCILE_TYPES as readonly string[]).includes(t));
  if (unknown.length) throw new UsageError(`unknown --types ${unknown.join(', ')}; known: ${RECONCILE_TYPES.join(', ')}`);
  const config = loadConfig('devices');
  if (!config.mentorApiUrl)
    throw new ConfigError('Invalid configuration: MENTOR_API_URL is required to reconcile (records are re-published to the mentor)');
  checkSigningSecret(config.mentorSigningSecret);
  const db = openDatabase(config.databaseUrl, { sqliteSynchronous: config.sqliteSynchronous });
  try {
    await migrateDevices(db);
    // Publish only: the running devices host (or a worker) delivers what this enqueues.
    const relay = await createRelay({ db, targets: devicesTargets(config, db).targets, listen: false });
    const n = await republish(db, relay, { since: values.since, types });
    await relay.stop();
    process.stdout.write(`republished ${n} record${n === 1 ? '' : 's'} to the mentor since ${new Date(values.since).toISOString()}\n`);
  } finally {
    await db.close();
  }
}

/**
 * `rotate-key`: re-encrypt every webhook secret and header set with the newest key in
 * RELAY_ENCRYPTION_KEYS (the first). Run it after putting a new key first; then the old key can go.
 */
async function rotateKey(args: string[]): Promise<void> {
  parseArgs({ args, options: {}, strict: true });
  const config = loadConfig('devices');
  if (!config.encryptionKey)
    throw new ConfigError('Invalid configuration: rotate-key needs RELAY_ENCRYPTION_KEYS (the new key first, then the old ones)');
  const db = openDatabase(config.databaseUrl);
  try {
    const { targets, webhooks } = devicesTargets(config, db);
    // createRelay applies the migrations and encrypts plaintext values; the rest are re-encrypted here.
    const relay = await createRelay({ db, targets, listen: false });
    const n = webhooks.sealedAtStart + (await webhooks.reseal({ all: true }));
    await relay.stop();
    process.stdout.write(`re-encrypted the secrets and headers of ${n} webhook endpoint${n === 1 ? '' : 's'} with the newest key\n`);
  } finally {
    await db.close();
  }
}

async function migrateOne(config: ResolvedConfig): Promise<string[]> {
  const db = openDatabase(config.databaseUrl, { sqliteSynchronous: config.sqliteSynchronous });
  try {
    // Before the outbox migrations below: a database of the other host is refused untouched.
    await checkOwnDatabase(db, config.service);
    // createRelay applies the outbox migrations and those of every target plugin it is given.
    const relay = await createRelay({ db, targets: config.service === 'devices' ? devicesTargets(config, db).targets : [], listen: false });
    await relay.stop();
    return config.service === 'devices' ? await migrateDevices(db) : await migrateMentor(db);
  } finally {
    await db.close();
  }
}

async function migrate(args: string[]): Promise<void> {
  const { positionals } = parseArgs({ args, options: {}, allowPositionals: true, strict: true });
  const which = positionals[0];
  if (positionals.length > 1 || (which !== undefined && which !== 'devices' && which !== 'mentor')) {
    throw new UsageError('migrate takes one optional argument: devices or mentor');
  }
  const services: Array<'devices' | 'mentor'> = which ? [which] : ['devices', 'mentor'];
  const configs = services.map((s) => loadConfig(s));
  if (configs.length === 2 && configs[0]!.databaseUrl === configs[1]!.databaseUrl) {
    throw new ConfigError(
      'Invalid configuration: DATABASE_URL is shared by both hosts; run `migrate devices` and `migrate mentor` each with its own DATABASE_URL',
    );
  }
  for (const config of configs) {
    const applied = await migrateOne(config);
    process.stdout.write(`${config.service}: ${applied.length ? `applied ${applied.join(', ')}` : 'up to date'}\n`);
  }
}

async function demo(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { 'devices-port': { type: 'string' }, 'mentor-port': { type: 'string' }, ...hostFlag },
    strict: true,
  });
  const port = (v: string | undefined, fallback: number, flag: string) => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (v.trim() === '' || !Number.isInteger(n) || n < 0 || n > 65535)
      throw new UsageError(`--${flag} must be a port number from 0 to 65535 (0 picks a free port; got ${JSON.stringify(v)})`);
    return n;
  };
  const running = await runDemo({
    devicesPort: port(values['devices-port'], 30080, 'devices-port'),
    mentorPort: port(values['mentor-port'], 30081, 'mentor-port'),
    host: values.host ?? '127.0.0.1',
  });
  stopOnSignals(() => running.close());
}

async function simulate(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { devices: { type: 'string' }, rate: { type: 'string' }, duration: { type: 'string' }, url: { type: 'string' } },
    strict: true,
  });
  const number = (v: string | undefined, fallback: number, flag: string, min: number) => {
    if (v === undefined) return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new UsageError(`--${flag} must be a number >= ${min}`);
    return n;
  };
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  process.once('SIGTERM', () => controller.abort());
  const summary = await runSimulation({
    url: (values.url ?? process.env.DEVICES_API_URL ?? 'http://127.0.0.1:30080').replace(/\/+$/, ''),
    devices: Math.floor(number(values.devices, 10, 'devices', 1)),
    rate: number(values.rate, 50, 'rate', 0.1),
    durationSec: number(values.duration, 10, 'duration', 0.1),
    signal: controller.signal,
  });
  printSummary(summary, process.stdout);
  process.exitCode = summary.failed > 0 ? 1 : 0;
}

async function secret(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { bytes: { type: 'string' } }, strict: true });
  const bytes = values.bytes === undefined ? 32 : Number(values.bytes);
  if (!Number.isInteger(bytes) || bytes < 24 || bytes > 64) throw new UsageError('--bytes must be a whole number from 24 to 64');
  process.stdout.write(`${generateSecret(bytes)}\n`);
}

const COMMANDS: Record<string, (args: string[]) => Promise<void>> = {
  devices,
  mentor,
  worker,
  demo,
  simulate,
  reconcile,
  migrate,
  secret,
  'rotate-key': rotateKey,
};

/**
 * `--port -1` as `--port=-1`: node's parseArgs refuses an option value that starts with a dash as
 * "ambiguous", which hides the real answer (what a valid value is) behind a message about syntax.
 */
function joinNegativeValues(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const next = args[i + 1];
    if (/^--[a-z][a-z-]*$/.test(a) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const run = COMMANDS[command];
  if (!run) throw new UsageError(`unknown command "${command}"; expected one of ${Object.keys(COMMANDS).join(', ')}`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${HELP[command]}\n`);
    return;
  }
  if (LONG_RUNNING.has(command)) boundHeapGrowth();
  await run(joinNegativeValues(rest));
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const e = err as Error & { code?: string };
  if (err instanceof ConfigError) {
    process.stderr.write(`raqeem-relay: ${e.message}\n`);
    process.exit(1);
  }
  if (err instanceof UsageError || (typeof e.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS'))) {
    process.stderr.write(`raqeem-relay: ${e.message.split('\n')[0]} (see raqeem-relay --help)\n`);
    process.exit(2);
  }
  process.stderr.write(`raqeem-relay: ${e?.message ?? String(err)}\n`);
  if (process.env.LOG_LEVEL === 'debug' && e?.stack) process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
