/**
 * The relay: the outbox write (`publish`), the dispatcher, and the dead-letter operations, behind one
 * object. Hosts create one per process; `start()`/`stop()` are safe to call twice.
 */
import type { Transaction } from 'sequelize';
import type { Dispatcher as UndiciDispatcher } from 'undici';
import type { Database } from './db.js';
import {
  countByStatus,
  getDelivery,
  listDeliveries,
  pruneDeliveries,
  recoverDeadDeliveries,
  redriveDead,
  retryDelivery,
} from './deliveries.js';
import type { DeliveryFilter } from './deliveries.js';
import { Dispatcher } from './dispatch/dispatcher.js';
import { RelayEmitter } from './emitter.js';
import { describeError } from './errors.js';
import type { RelayEvent } from './events.js';
import { GroupCommit } from './groupCommit.js';
import type { GroupTransaction, GroupWorkOptions } from './groupCommit.js';
import type { Logger } from './logger.js';
import { createRelayMetrics } from './metrics.js';
import type { RelayMetrics } from './metrics.js';
import { runMigrations } from './migrate.js';
import { relayMigrations } from './migrations/index.js';
import { Notifier } from './notifier.js';
import { resolveRelayOptions } from './options.js';
import type { RelayOptions, ResolvedRelayOptions } from './options.js';
import { insertOutbox } from './sql/insertOutbox.js';
import type { NewDelivery } from './sql/insertOutbox.js';
import { circuitKey } from './target.js';
import type { TargetPlugin } from './target.js';
import { createAgent } from './transport.js';

export type { RelayOptions } from './options.js';

/** A publish routed and leased, not yet written (see `Relay.route`). @internal */
export interface RoutedPublish {
  /** The events to store: those with a delivery or retained by a target. */
  events: RelayEvent[];
  rows: NewDelivery[];
  now: number;
}

/** Options of `relay.publish`. */
export interface PublishOptions {
  /** The caller's transaction: the event and its deliveries commit or roll back with the caller's record. */
  transaction?: Transaction;
  /** Only these targets (reconcile uses this to re-publish to the mentor alone). */
  targets?: string[];
  /**
   * The events may be stored already (reconcile re-publishes with the original event ids): an existing
   * event row is kept and only the new deliveries are written.
   */
  republish?: boolean;
}

export class Relay {
  readonly db: Database;
  readonly events = new RelayEmitter();
  readonly metrics: RelayMetrics;
  /** @internal The dispatch loop; drive it through `start`, `stop` and `wake`. */
  readonly dispatcher: Dispatcher;
  readonly logger: Logger;
  /** Every option with its default filled in (see `resolveRelayOptions`). */
  readonly options: ResolvedRelayOptions;
  private readonly group: GroupCommit;
  private readonly plugins: Map<string, TargetPlugin>;
  private readonly ownAgent: UndiciDispatcher | null;
  private readonly notifier: Notifier;
  private pruneTimer: NodeJS.Timeout | null = null;
  private pruning: Promise<unknown> = Promise.resolve();
  private started = false;
  private stopping: Promise<void> | null = null;
  private countsCache: { at: number; value: Promise<Array<{ target: string; status: string; n: number }>> } | null = null;

  constructor(options: RelayOptions | ResolvedRelayOptions) {
    const o = resolveRelayOptions(options);
    this.options = o;
    this.db = o.db;
    this.logger = o.logger;
    this.plugins = new Map(o.targets.map((t) => [t.name, t]));
    this.metrics = createRelayMetrics(
      o.registry,
      () => this.counts().then((byStatus) => ({ byStatus })),
      o.targets.map((t) => t.name),
    );
    this.ownAgent = o.agent ? null : createAgent();
    this.dispatcher = new Dispatcher(
      {
        db: this.db,
        plugins: this.plugins,
        agent: o.agent ?? this.ownAgent!,
        logger: this.logger,
        metrics: this.metrics,
        emitter: this.events,
        circuitFor: o.circuitFor,
        stopTimeoutMs: o.stopTimeoutMs,
        // A result flush rides in the ingest batch that is committing anyway: always on SQLite (one writer);
        // on PostgreSQL while a lane is busy, its statement's parts joining the batch's one statement
        // (lib/groupCommit.ts), and otherwise alone (one statement either way).
        resultTransaction: (fn, parts) =>
          this.db.dialect === 'sqlite' ? this.group.ride(fn) : parts && this.group.busy ? this.group.ride(fn, parts) : null,
      },
      o.dispatcher,
    );
    this.notifier = new Notifier(this.db, this.logger, (keys) => this.dispatcher.notified(keys));
    this.group = new GroupCommit(
      this.db,
      {
        publish: (events, targets, transaction) => this.publish(events, { transaction, targets }),
        route: (events, targets) => this.route(events, { targets }),
        handOver: (routed, written) => this.dispatcher.direct.handOver(routed.rows, written),
      },
      (info) => this.events.safeEmit('commit:batch', info),
      o.groupCommit,
    );
    for (const p of this.plugins.values()) p.attach?.(this);
    if (o.redriveOnRecovery) {
      const window = o.redriveWindowMs;
      this.events.on('circuit:closed', (t) => {
        redriveDead(this.db, t.key, t.openedAt - window, this.budgets())
          .then(async (n) => {
            if (n === 0) return;
            this.logger.info(
              { circuitKey: t.key, requeued: n },
              `${t.key} recovered: re-queued ${n} deliveries that died during the outage`,
            );
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
    const routed = await this.route(list, options);
    if (!routed) return { deliveries: 0 };
    const written = await insertOutbox(this.db.sequelize, routed.events, routed.rows, transaction, routed.now, {
      ignoreExisting: options.republish,
    });
    transaction.afterCommit(this.dispatcher.direct.handOver(routed.rows, written));
    return { deliveries: routed.rows.length };
  }

  /**
   * The first half of a publish: each event's deliveries (one per matching target and endpoint), the events
   * that have any (or that a target retains), and which rows this process's dispatcher takes without a claim
   * (written leased, see lib/dispatch/direct.ts). Null when there is nothing to write. Plugins' routes read
   * through `options.transaction`, or outside any transaction when none is given.
   * @internal
   */
  async route(list: RelayEvent[], options: PublishOptions): Promise<RoutedPublish | null> {
    const { transaction } = options;
    const now = Date.now();
    const rows: NewDelivery[] = [];
    const routed: RelayEvent[] = [];
    let retained = false;
    for (const event of list) {
      if (event.id.includes('.')) throw new Error(`event id must not contain "." (got ${JSON.stringify(event.id)})`);
      let any = false;
      for (const plugin of this.plugins.values()) {
        if (options.targets && !options.targets.includes(plugin.name)) continue;
        for (const { endpointId } of await plugin.route(event, { transaction })) {
          const key = circuitKey(plugin.name, endpointId);
          rows.push({ event, target: plugin.name, endpointId, circuitKey: key, maxAttempts: plugin.retry.maxAttempts, nextAttemptAt: now });
          any = true;
        }
      }
      if (!any && !options.targets) {
        for (const plugin of this.plugins.values())
          if (plugin.retain && (await plugin.retain(event, { transaction }))) any = retained = true;
      }
      if (any) routed.push(event);
    }
    if (rows.length === 0 && !retained) return null;
    // What this process's dispatcher can take at once is written leased to it and sent after commit. Not a
    // re-publish: its event row may be stored already, and what is sent must be the stored event.
    if (!options.republish) this.dispatcher.direct.lease(rows, now);
    return { events: routed, rows, now };
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
    if (this.options.listen) await this.notifier.listen();
    this.dispatcher.start();
    if (this.options.retentionDays !== undefined) {
      const days = this.options.retentionDays;
      const prune = () =>
        (this.pruning = this.prune(days)
          .then((n) => n > 0 && this.logger.info({ pruned: n, retentionDays: days }, `pruned ${n} finished deliveries`))
          .catch((err) => this.logger.warn({ error: describeError(err) }, 'pruning the delivery log failed')));
      this.pruneTimer = setInterval(prune, this.options.pruneIntervalMs);
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
      if (this.pruneTimer) clearInterval(this.pruneTimer);
      await this.pruning;
      await this.notifier.close();
      for (const p of this.plugins.values()) await p.close?.().catch(() => undefined);
      await (this.ownAgent as { close?: () => Promise<void> } | null)?.close?.().catch(() => undefined);
    })();
    return this.stopping;
  }

  /** Wake the dispatcher (for work queued by a direct database update). */
  wake(): void {
    this.dispatcher.wake();
  }

  /** The delivery log, newest first, one page (`next_cursor` for the next); `since`/`until` in epoch ms. */
  listDeliveries(filter?: DeliveryFilter) {
    return listDeliveries(this.db, filter);
  }

  /** One delivery with every attempt and its event, or null. */
  getDelivery(id: number) {
    return getDelivery(this.db, id);
  }

  /** Re-queue one delivery (any status but in flight) with a fresh attempt budget. */
  async retryDelivery(id: number) {
    const r = await retryDelivery(this.db, id, this.budgets());
    if (r === 'requeued') await this.notify();
    return r;
  }

  /** Re-queue every dead delivery created in the window (epoch ms), optionally of one target or endpoint; returns how many. */
  async recoverDead(window: { since: number; until?: number; target?: string; webhookId?: string }) {
    const n = await recoverDeadDeliveries(this.db, window, this.budgets());
    if (n > 0) await this.notify();
    return n;
  }

  /** Delete finished deliveries (and their attempts) older than this many days; returns how many. */
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
    await this.notifier.notify();
  }
}

/** Create a relay and (by default) apply the outbox migrations. */
export async function createRelay(options: RelayOptions): Promise<Relay> {
  // Checked before any migration runs, so a wrong option changes nothing.
  const o = resolveRelayOptions(options);
  if (o.migrate) {
    await runMigrations(o.db, relayMigrations, 'relay_migrations');
    for (const t of o.targets) if (t.migrations) await runMigrations(o.db, t.migrations, `relay_${t.name}_migrations`);
  }
  const relay = new Relay(o);
  for (const t of o.targets) await t.init?.();
  return relay;
}
