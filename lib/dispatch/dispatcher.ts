/**
 * The dispatcher: claims due deliveries in batches, sends them with bounded concurrency per circuit key,
 * records every attempt, and reschedules or finishes them.
 *
 * Flow: `loop` claims (`claim.ts`, one statement) while there is local capacity, hands rows to per-key
 * queues (`keyQueues.ts`), and sleeps until woken (a local commit, a PostgreSQL NOTIFY, a completion, a
 * retry coming due) or until the poll interval passes. `pump` starts requests per key up to the key's
 * concurrency, grouping batchable events into one request (`attempt.ts`). Results are buffered and written
 * in one transaction per burst (`results.ts`). Nothing is held in memory per pending delivery: only claimed
 * rows, at most a couple of batches.
 */
import type { Transaction } from 'sequelize';
import type { Dispatcher as UndiciDispatcher } from 'undici';
import { CircuitBreakers } from '../circuit.js';
import type { CircuitOptions, CircuitTransition } from '../circuit.js';
import type { Database } from '../db.js';
import type { RelayEmitter } from '../emitter.js';
import { coerceError, describeError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { RelayMetrics } from '../metrics.js';
import { observeCircuit } from '../observe.js';
import type { ResolvedDispatcherOptions } from '../options.js';
import { reclaimExpiredLeases, releaseOwnLeases } from '../sql/releaseLeases.js';
import type { TargetPlugin } from '../target.js';
import { Alarm } from './alarm.js';
import { attempt, handleAttempt } from './attempt.js';
import type { HandleContext } from './attempt.js';
import { claimDue } from './claim.js';
import type { ClaimResult } from './claim.js';
import { DirectPath } from './direct.js';
import { KeyQueues } from './keyQueues.js';
import type { Claimed } from './keyQueues.js';
import { ResultBuffer } from './results.js';

export interface DispatcherDeps {
  db: Database;
  plugins: Map<string, TargetPlugin>;
  agent: UndiciDispatcher;
  logger: Logger;
  metrics: RelayMetrics;
  emitter: RelayEmitter;
  /** The circuit options of a key of this plugin (see `resolveRelayOptions`). */
  circuitFor(plugin: TargetPlugin | undefined): CircuitOptions;
  /** How long `stop()` drains by default. */
  stopTimeoutMs: number;
  /** Where result writes that need a transaction run (see `ResultBufferOptions.transaction`). */
  resultTransaction?: (fn: (t: Transaction) => Promise<void>, parts?: (p: (value: unknown) => string) => string[]) => Promise<void> | null;
}

export class Dispatcher {
  readonly circuits: CircuitBreakers;
  /** @internal The publish-side half of the direct path (`direct.ts`). */
  readonly direct: DirectPath;
  private readonly queues: KeyQueues;
  private readonly results: ResultBuffer;
  private readonly sends = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private running = false;
  private loopDone: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  private readonly alarm = new Alarm();
  private lastReclaim = 0;
  private lastClaimAt = 0;
  /** The last claim may have left due rows behind (it was full, or capacity stopped it). */
  private backlogged = true;
  /** Keys the last claim left out or filled to their room: they may have due rows in the database. */
  private backloggedKeys = new Set<string>();
  /** Set while a claim runs: keys that ask for one meanwhile are judged on its result (`claim`). */
  private claiming = false;
  private readonly askedDuringClaim = { written: new Set<string>(), freed: new Set<string>() };
  /** Keys with a linger timer set. */
  private readonly lingering = new Set<string>();
  private readonly handling: HandleContext;

  constructor(
    private readonly deps: DispatcherDeps,
    readonly options: ResolvedDispatcherOptions,
  ) {
    this.circuits = new CircuitBreakers(
      (key) => deps.circuitFor(deps.plugins.get(key.split(':')[0]!)),
      (t) => this.onCircuit(t),
    );
    this.queues = new KeyQueues(options);
    this.results = new ResultBuffer({
      db: deps.db,
      workerId: options.workerId,
      flushIntervalMs: options.flushIntervalMs,
      pollIntervalMs: options.pollIntervalMs,
      active: () => this.running || this.stopping !== null,
      report: (err, during) => this.report(err, during),
      transaction: deps.resultTransaction,
    });
    this.handling = {
      ...deps,
      circuits: this.circuits,
      results: this.results,
      wakeAt: (at) => {
        if (this.running) this.alarm.wakeAt(at);
      },
      report: (err, during) => this.report(err, during),
    };
    this.direct = new DirectPath(
      {
        owner: options.workerId,
        leaseMs: options.leaseMs,
        accepts: (key, plugin, adding) => this.acceptsDirect(key, plugin, adding),
        enqueue: (rows) => this.enqueueDirect(rows),
        wake: (keys) => this.pendingWritten(keys),
      },
      deps.plugins,
    );
  }

  get isRunning(): boolean {
    return this.running;
  }

  /** Start the loop; calling it again while running is a no-op. */
  start(): void {
    if (this.running || this.stopping) return;
    this.running = true;
    this.loopDone = this.loop();
  }

  /** Something may be due: claim now rather than at the next poll. */
  wake(): void {
    this.alarm.wake();
  }

  /**
   * A NOTIFY from a commit, ours or another process's: rows of `keys` were written pending (null: of keys
   * it does not name, or a re-queue).
   */
  notified(keys: string[] | null): void {
    if (keys) this.pendingWritten(new Set(keys));
    else this.wake();
  }

  /**
   * Stop claiming, let in-flight requests finish (bounded by `timeoutMs`, then abort them), write every
   * result, and hand back leases of rows that were claimed but never sent. Safe to call twice.
   */
  stop({ timeoutMs = this.deps.stopTimeoutMs }: { timeoutMs?: number } = {}): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      this.running = false;
      this.wake();
      await this.loopDone;
      const unsent = this.queues.takeAllQueued();
      await releaseOwnLeases(
        this.deps.db.sequelize,
        this.options.workerId,
        unsent.map((r) => r.id),
        Date.now(),
      ).catch((err) => this.report(err, 'release'));
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
      await Promise.race([Promise.allSettled([...this.sends]), deadline]);
      if (this.sends.size > 0) {
        this.abort.abort(new Error('dispatcher stopping'));
        await Promise.allSettled([...this.sends]);
      }
      clearTimeout(timer);
      this.alarm.clear();
      await this.results.flush();
      this.results.close();
    })();
    return this.stopping;
  }

  /** Write buffered results now. */
  flush(): Promise<void> {
    return this.results.flush();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      this.alarm.reset();
      let claimed = 0;
      try {
        await this.reclaimIfDue();
        this.lastClaimAt = Date.now();
        claimed = await this.claim();
        await this.probe();
      } catch (err) {
        this.report(err, 'claim');
        await this.sleep(this.options.pollIntervalMs);
        continue;
      }
      if (!this.running) break;
      // A full claim means more may be due right away, unless local capacity is used up.
      if (claimed < this.options.batchSize || this.queues.localRows() >= 2 * this.options.batchSize) {
        await this.sleep(this.options.pollIntervalMs);
        await this.coalesce();
      }
    }
  }

  /**
   * Under a steady stream every commit wakes the dispatcher, and each wake-up costs a claim, an event read,
   * a request and a flush transaction for the one or two rows that came due: at 400 ingests/s that doubled
   * the devices host's CPU per record. Claiming at most once per `claimIntervalMs` (after a claim that
   * emptied the queue) turns those into one claim and one batch, for a few milliseconds of latency.
   */
  private async coalesce(): Promise<void> {
    const wait = this.lastClaimAt + this.options.claimIntervalMs - Date.now();
    if (wait > 0 && this.running) await new Promise((resolve) => setTimeout(resolve, wait));
  }

  private sleep(ms: number): Promise<void> {
    return this.running ? this.alarm.sleep(ms, this.circuits.nextChangeAt()) : Promise.resolve();
  }

  private async reclaimIfDue(): Promise<void> {
    const every = Math.min(Math.max(this.options.leaseMs / 2, 100), 30_000);
    const now = Date.now();
    if (now - this.lastReclaim < every) return;
    this.lastReclaim = now;
    const n = await reclaimExpiredLeases(this.deps.db.sequelize, now);
    if (n > 0) this.deps.logger.warn({ count: n }, `reclaimed ${n} deliveries whose lease expired`);
  }

  private release(ids: number[]): void {
    releaseOwnLeases(this.deps.db.sequelize, this.options.workerId, ids, Date.now()).catch((err) => this.report(err, 'release'));
  }

  private async claim(onlyKey?: string): Promise<number> {
    const { db, plugins } = this.deps;
    this.claiming = true;
    let r: ClaimResult;
    try {
      r = await claimDue({ db, plugins, queues: this.queues, circuits: this.circuits, options: this.options }, onlyKey);
    } finally {
      this.claiming = false;
    }
    if (r.backlogged !== undefined) this.backlogged = r.backlogged;
    if (r.backloggedKeys) this.backloggedKeys = r.backloggedKeys;
    if (r.count > 0) this.queues.push(r.claimed, (row) => plugins.get(row.target)!);
    // Asked while the claim ran, now judged on what it took (a wake-up remembered from then cost a claim of a
    // few rows for a key the claim had just filled). Rows written meanwhile may have missed the claim.
    const { written, freed } = this.askedDuringClaim;
    if (written.size > 0) this.pendingWritten(written);
    for (const key of freed) this.roomFreed(key);
    written.clear();
    freed.clear();
    if (r.count === 0) return 0;
    if (r.lost.length > 0) {
      // The event row is gone (pruned) or no plugin is registered: dead-letter with the reason, never spin.
      this.results.add(
        [],
        [{ ids: r.lost, status: 'dead', spent: 0, nextAttemptAt: null, statusCode: null, error: 'event or target plugin missing' }],
      );
    }
    for (const key of r.keys) this.pump(key, onlyKey !== undefined);
    return r.count;
  }

  /**
   * A publish wrote rows of these keys pending: they have due rows waiting. Claim now unless each key is
   * stocked above half its cap; those are marked backlogged and refilled as they drain (`roomFreed`). A key
   * the claim is for is left unmarked: marked, it would stay off the direct path until the claim is done.
   */
  private pendingWritten(keys: Set<string>): void {
    if (this.claiming) {
      for (const key of keys) this.askedDuringClaim.written.add(key);
      return;
    }
    let wanted = false;
    for (const key of keys) {
      if (this.queues.stocked(key)) this.backloggedKeys.add(key);
      else wanted = true;
    }
    if (wanted) this.wake();
  }

  /**
   * A send of `key` finished. Freed capacity matters only if due rows were left in the database for want of
   * it, and only once there is room for a good share of them: half the local room, or half the key's cap
   * (`KeyQueues.stocked`). Claiming for every freed request slot took a few rows a claim.
   */
  private roomFreed(key: string): void {
    if (this.claiming) this.askedDuringClaim.freed.add(key);
    else if (this.refillWanted(key)) this.wake();
  }

  private refillWanted(key: string): boolean {
    if (this.backlogged && this.queues.localRows() <= this.options.batchSize) return true;
    return this.backloggedKeys.has(key) && !this.queues.stocked(key);
  }

  /** See `DirectHost.accepts`: nothing older of that key may be overtaken, and the key must have room. */
  private acceptsDirect(key: string, plugin: TargetPlugin, adding: number): boolean {
    if (!this.running || this.stopping || this.backlogged || this.backloggedKeys.has(key)) return false;
    if (this.circuits.state(key) !== 'closed') return false;
    if (this.queues.localRows() + adding >= 2 * this.options.batchSize) return false;
    return this.queues.held(key) + adding < this.queues.cap(plugin);
  }

  private enqueueDirect(rows: Claimed[]): void {
    if (!this.running) {
      this.release(rows.map((r) => r.id));
      this.wake();
      return;
    }
    for (const key of this.queues.push(rows, (row) => this.deps.plugins.get(row.target)!)) this.pump(key);
  }

  private async probe(): Promise<void> {
    for (const key of this.circuits.takeProbes()) {
      const n = await this.claim(key);
      if (n === 0) this.circuits.probeSkipped(key);
    }
  }

  private pump(key: string, probe = false): void {
    const k = this.queues.get(key);
    if (!k) return;
    const limit = k.plugin.concurrency ?? this.options.concurrency;
    if (!probe && k.queue.length > 0 && this.circuits.state(key) !== 'closed') {
      // The circuit opened while these waited: hand them back unsent so they spend no attempt.
      this.release(this.queues.takeQueued(key).map((r) => r.id));
      return;
    }
    const stale = this.queues.dropStale(k, Date.now());
    if (stale.length > 0) this.release(stale);
    while (k.queue.length > 0 && k.inflightRequests < limit && this.running) {
      if (!probe) {
        const hold = this.queues.linger(key, k, Date.now());
        if (!hold.send) {
          this.lingerUntil(key, hold.until);
          break;
        }
      }
      // A circuit probe is never held: held, it would be handed back unsent and the key would wait for a
      // probe that never comes.
      const notBefore = k.plugin.pace?.(k.queue[0]!.endpoint_id, Date.now()) ?? null;
      if (notBefore !== null && !probe) {
        this.lingerUntil(key, notBefore);
        break;
      }
      const group = this.queues.takeGroup(key, k, Date.now());
      const p = this.sendGroup(k.plugin, key, group, probe)
        .catch((err) => this.report(err, 'send'))
        .finally(() => {
          this.queues.finish(k, group);
          this.sends.delete(p);
          if (this.queues.settle(key)) this.pump(key);
          this.roomFreed(key);
        });
      this.sends.add(p);
    }
  }

  /** Pump a held key again when its hold ends (one timer per key). */
  private lingerUntil(key: string, until: number): void {
    if (this.lingering.has(key)) return;
    this.lingering.add(key);
    setTimeout(() => {
      this.lingering.delete(key);
      this.pump(key);
    }, until - Date.now());
  }

  private async sendGroup(plugin: TargetPlugin, key: string, rows: Claimed[], probe: boolean): Promise<void> {
    const result = await attempt(plugin, rows, probe, {
      agent: this.deps.agent,
      requestTimeoutMs: this.options.requestTimeoutMs,
      signal: this.abort.signal,
    });
    // One bad record must not sink a whole batch: a permanent answer to a batch is retried one by one.
    if (result.verdict === 'permanent' && rows.length > 1) {
      await Promise.all(rows.map((r) => this.sendGroup(plugin, key, [r], probe)));
      return;
    }
    handleAttempt(this.handling, plugin, key, rows, result);
  }

  private onCircuit(t: CircuitTransition): void {
    observeCircuit(this.deps, t);
    if (t.to === 'half-open') this.wake();
  }

  private report(err: unknown, during: string): void {
    const error = coerceError(err);
    this.deps.logger.error({ during, error: describeError(error) }, `dispatcher error during ${during}`);
    this.deps.emitter.safeEmit('dispatcher:error', { error, during });
  }
}
