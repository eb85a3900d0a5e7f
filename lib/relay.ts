/**
 * The relay: the outbox write (`publish`), the dispatcher, and the dead-letter operations, behind one
 * object. Hosts create one per process; `start()`/`stop()` are safe to call twice.
 */
import pg from 'pg';
import { Registry } from 'prom-client';
import type { Transaction } from 'sequelize';
import type { Dispatcher as UndiciDispatcher } from 'undici';
import type { Database } from './db.js';
import { countByStatus, getDelivery, listDeliveries, pruneDeliveries, recoverDeadDeliveries, redriveDead, retryDelivery } from './deliveries.js';
import type { DeliveryFilter } from './deliveries.js';
import { Dispatcher } from './dispatcher.js';
import type { Claimed, DispatcherOptions } from './dispatcher.js';
import { RelayEmitter } from './emitter.js';
import { describeError } from './errors.js';
import type { RelayEvent } from './events.js';
import { GroupCommit } from './groupCommit.js';
import type { GroupCommitOptions, GroupTransaction, GroupWorkOptions } from './groupCommit.js';
import { silentLogger } from './logger.js';
import type { Logger } from './logger.js';
import { createRelayMetrics } from './metrics.js';
import type { RelayMetrics } from './metrics.js';
import { runMigrations } from './migrate.js';
import { relayMigrations } from './migrations/index.js';
import { deliveryKey, insertOutbox } from './sql/insertOutbox.js';
import type { NewDelivery } from './sql/insertOutbox.js';
import { circuitKey } from './target.js';
import type { TargetPlugin } from './target.js';
import { createAgent } from './transport.js';

export interface RelayOptions {
  db: Database;
  targets: TargetPlugin[];
  logger?: Logger;
  /** The host's Prometheus registry; a private one by default. */
  registry?: Registry;
  dispatcher?: DispatcherOptions;
  /** Shared outbound HTTP dispatcher (keep-alive agent); one is created by default. */
  agent?: UndiciDispatcher;
  /** Run the outbox migrations in `createRelay` (default true). */
  migrate?: boolean;
  /** Listen for NOTIFY on PostgreSQL so commits in other processes wake this dispatcher (default true). */
  listen?: boolean;
  /**
   * When a circuit closes after an outage, re-queue deliveries of that key that died of it (retryable
   * causes only) within `redriveWindowMs` before the circuit opened. Default true.
   */
  redriveOnRecovery?: boolean;
  redriveWindowMs?: number;
  /** Prune finished deliveries older than this many days, hourly while started (`RELAY_RETENTION_DAYS`). */
  retentionDays?: number;
  /** Batching of `relay.transaction()` (lanes, callers and rows per batch). */
  groupCommit?: GroupCommitOptions;
}

export interface PublishOptions {
  /** The caller's transaction: the event and its deliveries commit or roll back with the caller's record. */
  transaction?: Transaction;
  /** Only these targets (reconcile uses this to re-publish to the mentor alone). */
  targets?: string[];
}

const NOTIFY_CHANNEL = 'relay_outbox';

export class Relay {
  readonly db: Database;
  readonly events = new RelayEmitter();
  readonly metrics: RelayMetrics;
  readonly dispatcher: Dispatcher;
  readonly logger: Logger;
  private readonly group: GroupCommit;
  private readonly plugins: Map<string, TargetPlugin>;
  private readonly ownAgent: UndiciDispatcher | null;
  private readonly listenEnabled: boolean;
  private listener: pg.Client | null = null;
  private listenerRetry: NodeJS.Timeout | null = null;
  private pruneTimer: NodeJS.Timeout | null = null;
  private pruning: Promise<unknown> = Promise.resolve();
  private readonly retentionDays: number | undefined;
  private started = false;
  private stopping: Promise<void> | null = null;
  private countsCache: { at: number; value: Promise<Array<{ target: string; status: string; n: number }>> } | null = null;

  constructor(options: RelayOptions) {
    this.db = options.db;
    this.logger = options.logger ?? silentLogger;
    this.plugins = new Map();
    for (const t of options.targets) {
      if (!/^[a-z][a-z0-9_-]{0,63}$/.test(t.name)) throw new Error(`target plugin name ${JSON.stringify(t.name)} must match /^[a-z][a-z0-9_-]{0,63}$/`);
      if (this.plugins.has(t.name)) throw new Error(`two target plugins are named ${JSON.stringify(t.name)}`);
      this.plugins.set(t.name, t);
    }
    this.metrics = createRelayMetrics(options.registry ?? new Registry(), () => this.counts().then((byStatus) => ({ byStatus })));
    this.ownAgent = options.agent ? null : createAgent();
    this.listenEnabled = options.listen ?? true;
    this.retentionDays = options.retentionDays;
    this.dispatcher = new Dispatcher(
      {
        db: this.db,
        plugins: this.plugins,
        agent: options.agent ?? this.ownAgent!,
        logger: this.logger,
        metrics: this.metrics,
        emitter: this.events,
      },
      options.dispatcher,
    );
    this.group = new GroupCommit(
      this.db,
      (events, targets, transaction) => this.publish(events, { transaction, targets }),
      (info) => this.events.safeEmit('commit:batch', info),
      options.groupCommit,
    );
    if (options.redriveOnRecovery ?? true) {
      const window = options.redriveWindowMs ?? 3_600_000;
      this.events.on('circuit:closed', (t) => {
        redriveDead(this.db, t.key, t.openedAt - window, this.budgets())
          .then(async (n) => {
            if (n === 0) return;
            this.logger.info({ circuitKey: t.key, requeued: n }, `${t.key} recovered: re-queued ${n} deliveries that died during the outage`);
            await this.notify();
          })
          .catch((err) => this.logger.warn({ error: describeError(err), circuitKey: t.key }, 'redrive after recovery failed'));
      });
    }
  }

  get targets(): TargetPlugin[] {
    return [...this.plugins.values()];
  }

  /**
   * Write events and one delivery per matching target/endpoint. With `transaction`, inside it (and the
   * dispatcher is woken after it commits); without, in a transaction of its own.
   */
  async publish(events: RelayEvent | RelayEvent[], options: PublishOptions = {}): Promise<{ deliveries: number }> {
    const list = Array.isArray(events) ? events : [events];
    if (list.length === 0) return { deliveries: 0 };
    const { transaction } = options;
    if (!transaction) return this.db.transaction((t) => this.publish(list, { ...options, transaction: t }));
    const now = Date.now();
    const rows: NewDelivery[] = [];
    const routed: RelayEvent[] = [];
    // Deliveries this process's dispatcher can take at once are written already leased to it and sent from
    // memory after commit: no claim statement, no event read, no wake-up. If the process dies first, the
    // lease runs out and any dispatcher re-sends them, as after any crash.
    const { owner, leaseMs } = this.dispatcher.leaseOptions;
    const direct = new Map<string, number>();
    for (const event of list) {
      if (event.id.includes('.')) throw new Error(`event id must not contain "." (got ${JSON.stringify(event.id)})`);
      let any = false;
      for (const plugin of this.plugins.values()) {
        if (options.targets && !options.targets.includes(plugin.name)) continue;
        for (const { endpointId } of await plugin.route(event, { transaction })) {
          const key = circuitKey(plugin.name, endpointId);
          const adding = direct.get(key) ?? 0;
          const lease = this.dispatcher.acceptsDirect(key, plugin, adding) ? { owner, until: now + leaseMs } : undefined;
          if (lease) direct.set(key, adding + 1);
          rows.push({ event, target: plugin.name, endpointId, circuitKey: key, maxAttempts: plugin.retry.maxAttempts, nextAttemptAt: now, lease });
          any = true;
        }
      }
      if (any) routed.push(event);
    }
    if (rows.length === 0) return { deliveries: 0 };
    const { leased, stored } = await insertOutbox(this.db.sequelize, routed, rows, transaction, now);
    const queued: Claimed[] = [];
    // The stored copy, not the caller's object, which it may change after publishing; one per event.
    const copies = new Map<string, RelayEvent>();
    for (const d of rows) {
      const id = d.lease && leased.get(deliveryKey(d.event.id, d.circuitKey));
      if (!d.lease || id === undefined) continue;
      const e = d.event;
      let event = copies.get(e.id);
      if (!event) {
        event = { ...e, data: JSON.parse(stored.get(e.id)!) as RelayEvent['data'], requestId: e.requestId ?? null };
        copies.set(e.id, event);
      }
      queued.push({
        id,
        event_id: e.id,
        event_type: e.type,
        deviceid: e.deviceid,
        target: d.target,
        endpoint_id: d.endpointId,
        circuit_key: d.circuitKey,
        attempts: 0,
        max_attempts: d.maxAttempts,
        next_attempt_at: d.nextAttemptAt,
        event,
        leaseUntil: d.lease.until,
      });
    }
    const pending = rows.length > queued.length;
    transaction.afterCommit(() => {
      if (queued.length > 0) this.dispatcher.enqueueDirect(queued);
      if (pending) this.dispatcher.wake();
    });
    return { deliveries: rows.length };
  }

  /**
   * Run `work` with concurrent callers in one shared transaction (group commit, see lib/groupCommit.ts):
   * `work(tx)` reads through `tx.transaction` and queues rows with `tx.insert(table, rows)` and events with
   * `tx.publish(events)`; the batch writes them with one INSERT per table and one outbox write, commits,
   * and only then resolves with `work`'s value. `work` may run again (alone) when another caller's
   * statement fails the batch, so it must not have effects outside the database. With `savepoint: true`
   * it may also write through `tx.transaction` directly. A throw rejects this caller alone.
   */
  transaction<T>(work: (tx: GroupTransaction) => Promise<T>, options?: GroupWorkOptions): Promise<T> {
    return this.group.run(work, options);
  }

  /** Start dispatching (and, on PostgreSQL, listening for other processes' commits). */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    if (this.db.dialect === 'postgres' && this.listenEnabled) await this.listen();
    this.dispatcher.start();
    if (this.retentionDays !== undefined) {
      const days = this.retentionDays;
      const prune = () =>
        (this.pruning = this.prune(days)
          .then((n) => n > 0 && this.logger.info({ pruned: n, retentionDays: days }, `pruned ${n} finished deliveries`))
          .catch((err) => this.logger.warn({ error: describeError(err) }, 'pruning the delivery log failed')));
      this.pruneTimer = setInterval(prune, 3_600_000);
      this.pruneTimer.unref();
      void prune();
    }
  }

  /** Stop claiming, drain in-flight requests (bounded), release leases, close connections it owns. */
  stop(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      // Queued writers first: their commits hand deliveries to the dispatcher, which then drains them.
      await this.group.close();
      await this.dispatcher.stop(options);
      if (this.listenerRetry) clearTimeout(this.listenerRetry);
      if (this.pruneTimer) clearInterval(this.pruneTimer);
      await this.pruning;
      const l = this.listener;
      this.listener = null;
      await l?.end().catch(() => undefined);
      for (const p of this.plugins.values()) await p.close?.().catch(() => undefined);
      await (this.ownAgent as { close?: () => Promise<void> } | null)?.close?.().catch(() => undefined);
    })();
    return this.stopping;
  }

  /** Wake the dispatcher (for work queued by a direct database update). */
  wake(): void {
    this.dispatcher.wake();
  }

  listDeliveries(filter?: DeliveryFilter) {
    return listDeliveries(this.db, filter);
  }

  getDelivery(id: number) {
    return getDelivery(this.db, id);
  }

  async retryDelivery(id: number) {
    const r = await retryDelivery(this.db, id, this.budgets());
    if (r === 'requeued') await this.notify();
    return r;
  }

  async recoverDead(window: { since: number; until?: number; target?: string; webhookId?: string }) {
    const n = await recoverDeadDeliveries(this.db, window, this.budgets());
    if (n > 0) await this.notify();
    return n;
  }

  prune(retentionDays: number) {
    return pruneDeliveries(this.db, retentionDays);
  }

  /** Delivery counts by target and status, cached for a second (scrapes and health checks share it). */
  counts(): Promise<Array<{ target: string; status: string; n: number }>> {
    const now = Date.now();
    if (!this.countsCache || now - this.countsCache.at > 1000) {
      const value = countByStatus(this.db);
      value.catch(() => (this.countsCache = null));
      this.countsCache = { at: now, value };
    }
    return this.countsCache.value;
  }

  /** Each target's attempts per delivery, for re-queued deliveries. */
  private budgets(): Record<string, number> {
    return Object.fromEntries([...this.plugins.values()].map((p) => [p.name, p.retry.maxAttempts]));
  }

  private async notify(): Promise<void> {
    this.dispatcher.wake();
    if (this.db.dialect === 'postgres') await this.db.sequelize.query(`SELECT pg_notify('${NOTIFY_CHANNEL}', '')`);
  }

  private async listen(): Promise<void> {
    const client = new pg.Client({ connectionString: this.db.postgresUrl });
    const retry = (err: unknown) => {
      if (this.stopping || this.listener !== client) return;
      this.listener = null;
      this.logger.warn({ error: describeError(err) }, 'outbox LISTEN connection lost; polling until it is back');
      client.end().catch(() => undefined);
      this.listenerRetry = setTimeout(() => void this.listen().catch(retry), 1000);
      this.listenerRetry.unref();
    };
    client.on('notification', () => this.dispatcher.wake());
    client.on('error', retry);
    client.on('end', () => retry(new Error('connection ended')));
    this.listener = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
    } catch (err) {
      retry(err);
    }
  }
}

/** Create a relay and (by default) apply the outbox migrations. */
export async function createRelay(options: RelayOptions): Promise<Relay> {
  if (options.migrate ?? true) {
    await runMigrations(options.db, relayMigrations, 'relay_migrations');
    for (const t of options.targets) if (t.migrations) await runMigrations(options.db, t.migrations, `relay_${t.name}_migrations`);
  }
  return new Relay(options);
}
