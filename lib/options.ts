/**
 * Every option of the relay and every library default, in one place. `resolveRelayOptions` checks each
 * option up front (before any migration runs) and throws an error that names the option, what it must be
 * and what it got, so a wrong value fails at start-up rather than as a stuck or spinning dispatcher.
 */
import { randomUUID } from 'node:crypto';
import { Registry } from 'prom-client';
import type { Dispatcher as UndiciDispatcher } from 'undici';
import type { CircuitOptions } from './circuit.js';
import type { Database } from './db.js';
import { defaultLogger } from './logger.js';
import type { Logger } from './logger.js';
import type { TargetPlugin } from './target.js';

/** Options of the dispatcher (`RelayOptions.dispatcher`); every default is in `resolveDispatcherOptions`. */
export interface DispatcherOptions {
  /** Rows per claim (100). */
  batchSize?: number;
  /** Fallback poll when nothing wakes the dispatcher (1000 ms). */
  pollIntervalMs?: number;
  /** Least time between two claims while caught up: wake-ups inside it are coalesced into one claim (10 ms). */
  claimIntervalMs?: number;
  /** Longest a result waits in memory to be written with others (10 ms). */
  flushIntervalMs?: number;
  /** Per-request timeout (10 000 ms). */
  requestTimeoutMs?: number;
  /** Lease per claim; must exceed the request timeout (2 x requestTimeoutMs + 30 000 ms). */
  leaseMs?: number;
  /** Default concurrent requests per circuit key; a plugin may set its own (8). */
  concurrency?: number;
  /** Rows a key of a non-batching plugin may hold per request slot, claimed ahead of sending (16). */
  queueDepth?: number;
  /** Identifies this dispatcher's leases (`dispatcher-<random>`). */
  workerId?: string;
}

/** {@link DispatcherOptions} with every default filled in. */
export type ResolvedDispatcherOptions = Required<DispatcherOptions>;

/** Batching of `relay.transaction()` (group commit, lib/groupCommit.ts). */
export interface GroupCommitOptions {
  /** Concurrent batches on PostgreSQL (4, and at most the pool size minus 2); SQLite always has 1. */
  lanes?: number;
  /**
   * Callers that must be waiting before a further lane opens beside a busy one (32). Fewer wait for the
   * busy lane's commit and go in the next batch, which costs the database less than a batch each; 1 opens
   * a lane for any caller that finds the others busy.
   */
  openLaneAt?: number;
  /** Callers per batch (256). */
  maxCallers?: number;
  /** A batch takes no further caller once this many rows and events are queued (5 000). */
  maxRows?: number;
}

/** {@link GroupCommitOptions} with every default filled in. */
export type ResolvedGroupCommitOptions = Required<GroupCommitOptions>;

/** Options of {@link createRelay}: the database and the targets are required, everything else has a default. */
export interface RelayOptions {
  db: Database;
  targets: TargetPlugin[];
  /**
   * Where the relay logs. By default JSON lines at `warn` and above on stderr (dead deliveries, open
   * circuits, dispatcher errors); `silentLogger` turns logging off.
   */
  logger?: Logger;
  /** The host's Prometheus registry; a private one by default. */
  registry?: Registry;
  dispatcher?: DispatcherOptions;
  /** Shared outbound HTTP dispatcher (keep-alive agent); the relay creates and closes its own by default. */
  agent?: UndiciDispatcher;
  /** Run the outbox migrations in `createRelay` (true). */
  migrate?: boolean;
  /** Listen for NOTIFY on PostgreSQL so commits in other processes wake this dispatcher (true). */
  listen?: boolean;
  /**
   * When a circuit closes after an outage, re-queue deliveries of that key that died of it (retryable
   * causes only) within `redriveWindowMs` before the circuit opened (true).
   */
  redriveOnRecovery?: boolean;
  /** How far before a circuit opened its dead deliveries are re-driven (3 600 000 ms: one hour). */
  redriveWindowMs?: number;
  /** Prune finished deliveries older than this many days while started (`RELAY_RETENTION_DAYS`); off by default. */
  retentionDays?: number;
  /** How often pruning runs while started (3 600 000 ms: hourly). */
  pruneIntervalMs?: number;
  /** How long `stop()` waits for in-flight requests before it aborts them, unless told otherwise (10 000 ms). */
  stopTimeoutMs?: number;
  /**
   * Circuit defaults for plugins that set none: `failureThreshold` min(5, maxAttempts - 1) and at least 1,
   * so a circuit opens before a total outage can exhaust any delivery's attempts; `cooldownMs` 5 000;
   * `maxCooldownMs` 60 000 (the cool-down doubles after each failed probe, up to this).
   */
  circuit?: Partial<CircuitOptions>;
  groupCommit?: GroupCommitOptions;
}

/** {@link RelayOptions} checked and with every default filled in (`relay.options`). */
export interface ResolvedRelayOptions {
  db: Database;
  targets: TargetPlugin[];
  logger: Logger;
  registry: Registry;
  dispatcher: ResolvedDispatcherOptions;
  /** Undefined: the relay creates (and closes) its own. */
  agent: UndiciDispatcher | undefined;
  migrate: boolean;
  listen: boolean;
  redriveOnRecovery: boolean;
  redriveWindowMs: number;
  /** Undefined: no pruning. */
  retentionDays: number | undefined;
  pruneIntervalMs: number;
  stopTimeoutMs: number;
  groupCommit: ResolvedGroupCommitOptions;
  /** The circuit options of a key of `plugin` (its own, else these defaults). */
  circuitFor(plugin: TargetPlugin | undefined): CircuitOptions;
}

const TARGET_NAME = /^[a-z][a-z0-9_-]{0,63}$/;

/** Consecutive failures that open a circuit, for a plugin that sets none (see `RelayOptions.circuit`). */
export function defaultFailureThreshold(maxAttempts: number): number {
  return Math.max(1, Math.min(5, maxAttempts - 1));
}

function fail(name: string, rule: string, got: unknown): never {
  const shown = typeof got === 'string' ? JSON.stringify(got) : String(got);
  throw new Error(`${name} must be ${rule} (got ${shown})`);
}

function wholeAtLeast(name: string, value: number | undefined, min: number): void {
  if (value !== undefined && !(Number.isInteger(value) && value >= min)) fail(name, `a whole number >= ${min}`, value);
}

/** Milliseconds (or days): a finite number at or above `min` (above it when `exclusive`). */
function duration(name: string, value: number | undefined, min: number, unit = 'milliseconds', exclusive = false): void {
  if (value === undefined) return;
  const ok = typeof value === 'number' && Number.isFinite(value) && (exclusive ? value > min : value >= min);
  if (!ok) fail(name, `a finite number of ${unit} ${exclusive ? '>' : '>='} ${min}`, value);
}

export function resolveDispatcherOptions(o: DispatcherOptions = {}): ResolvedDispatcherOptions {
  wholeAtLeast('dispatcher batchSize', o.batchSize, 1);
  duration('dispatcher pollIntervalMs', o.pollIntervalMs, 0, 'milliseconds', true);
  duration('dispatcher claimIntervalMs', o.claimIntervalMs, 0);
  duration('dispatcher flushIntervalMs', o.flushIntervalMs, 0);
  duration('dispatcher requestTimeoutMs', o.requestTimeoutMs, 0, 'milliseconds', true);
  duration('dispatcher leaseMs', o.leaseMs, 0, 'milliseconds', true);
  wholeAtLeast('dispatcher concurrency', o.concurrency, 1);
  wholeAtLeast('dispatcher queueDepth', o.queueDepth, 1);
  if (o.workerId !== undefined && !(typeof o.workerId === 'string' && o.workerId.length > 0))
    fail('dispatcher workerId', 'a non-empty string', o.workerId);
  const requestTimeoutMs = o.requestTimeoutMs ?? 10_000;
  const leaseMs = o.leaseMs ?? 2 * requestTimeoutMs + 30_000;
  if (leaseMs <= requestTimeoutMs)
    throw new Error(`dispatcher leaseMs (${leaseMs}) must be longer than requestTimeoutMs (${requestTimeoutMs})`);
  return {
    batchSize: o.batchSize ?? 100,
    pollIntervalMs: o.pollIntervalMs ?? 1000,
    claimIntervalMs: o.claimIntervalMs ?? 10,
    flushIntervalMs: o.flushIntervalMs ?? 10,
    requestTimeoutMs,
    leaseMs,
    concurrency: o.concurrency ?? 8,
    queueDepth: o.queueDepth ?? 16,
    workerId: o.workerId ?? `dispatcher-${randomUUID().slice(0, 8)}`,
  };
}

function checkCircuit(name: string, c: Partial<CircuitOptions> | undefined): void {
  if (!c) return;
  wholeAtLeast(`${name} failureThreshold`, c.failureThreshold, 1);
  duration(`${name} cooldownMs`, c.cooldownMs, 0);
  duration(`${name} maxCooldownMs`, c.maxCooldownMs, 0);
}

function checkTargets(targets: TargetPlugin[]): void {
  if (!Array.isArray(targets)) fail('targets', 'an array of target plugins (it may be empty)', targets);
  const names = new Set<string>();
  for (const t of targets) {
    if (!TARGET_NAME.test(t?.name)) throw new Error(`target plugin name ${JSON.stringify(t?.name)} must match ${TARGET_NAME}`);
    if (names.has(t.name)) throw new Error(`two target plugins are named ${JSON.stringify(t.name)}`);
    names.add(t.name);
    wholeAtLeast(`target ${t.name}: retry.maxAttempts`, t.retry?.maxAttempts, 1);
    wholeAtLeast(`target ${t.name}: concurrency`, t.concurrency, 1);
    if (t.batch) wholeAtLeast(`target ${t.name}: batch.maxSize`, t.batch.maxSize, 1);
    checkCircuit(`target ${t.name}: circuit`, t.circuit);
  }
}

const resolved = new WeakSet<ResolvedRelayOptions>();

/** Check every option and fill in every default; throws on the first wrong option, naming it. */
export function resolveRelayOptions(o: RelayOptions | ResolvedRelayOptions): ResolvedRelayOptions {
  if (resolved.has(o as ResolvedRelayOptions)) return o as ResolvedRelayOptions;
  if (!o || typeof o !== 'object') fail('relay options', 'an object', o);
  const options = o as RelayOptions;
  if (!options.db?.sequelize) fail('db', 'a database from openDatabase()', options.db);
  checkTargets(options.targets);
  duration('redriveWindowMs', options.redriveWindowMs, 0);
  duration('retentionDays', options.retentionDays, 0, 'days', true);
  duration('pruneIntervalMs', options.pruneIntervalMs, 0, 'milliseconds', true);
  duration('stopTimeoutMs', options.stopTimeoutMs, 0);
  checkCircuit('circuit', options.circuit);
  wholeAtLeast('groupCommit lanes', options.groupCommit?.lanes, 1);
  wholeAtLeast('groupCommit openLaneAt', options.groupCommit?.openLaneAt, 1);
  wholeAtLeast('groupCommit maxCallers', options.groupCommit?.maxCallers, 1);
  wholeAtLeast('groupCommit maxRows', options.groupCommit?.maxRows, 1);
  const circuit = { cooldownMs: 5_000, maxCooldownMs: 60_000, ...options.circuit };
  const result: ResolvedRelayOptions = {
    db: options.db,
    targets: options.targets,
    logger: options.logger ?? defaultLogger(),
    registry: options.registry ?? new Registry(),
    dispatcher: resolveDispatcherOptions(options.dispatcher),
    agent: options.agent,
    migrate: options.migrate ?? true,
    listen: options.listen ?? true,
    redriveOnRecovery: options.redriveOnRecovery ?? true,
    redriveWindowMs: options.redriveWindowMs ?? 3_600_000,
    retentionDays: options.retentionDays,
    pruneIntervalMs: options.pruneIntervalMs ?? 3_600_000,
    stopTimeoutMs: options.stopTimeoutMs ?? 10_000,
    // Field by field, so that a key given as undefined keeps its default.
    groupCommit: {
      lanes: options.groupCommit?.lanes ?? 4,
      openLaneAt: options.groupCommit?.openLaneAt ?? 32,
      maxCallers: options.groupCommit?.maxCallers ?? 256,
      maxRows: options.groupCommit?.maxRows ?? 5_000,
    },
    circuitFor: (plugin) => ({
      failureThreshold:
        plugin?.circuit?.failureThreshold ?? circuit.failureThreshold ?? defaultFailureThreshold(plugin?.retry.maxAttempts ?? 4),
      cooldownMs: plugin?.circuit?.cooldownMs ?? circuit.cooldownMs,
      maxCooldownMs: plugin?.circuit?.maxCooldownMs ?? circuit.maxCooldownMs,
    }),
  };
  resolved.add(result);
  return result;
}
