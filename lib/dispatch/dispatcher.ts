/**
 * The dispatcher: claims due deliveries in batches, sends them with bounded concurrency per circuit key,
 * records every attempt, and reschedules or finishes them.
 *
 * Flow: `loop` claims (one statement) while there is local capacity, hands rows to per-key queues, and
 * sleeps until woken (a local commit, a PostgreSQL NOTIFY, a completion, a retry coming due) or until the
 * poll interval passes. `pump` starts requests per key up to the key's concurrency, grouping batchable
 * events into one request. Results are buffered and written by `flush` in one transaction per burst.
 * Nothing is held in memory per pending delivery: only claimed rows, at most a couple of batches.
 */
import { randomUUID } from 'node:crypto';
import type { Dispatcher as UndiciDispatcher } from 'undici';
import { CircuitBreakers } from '../circuit.js';
import type { CircuitOptions, CircuitTransition } from '../circuit.js';
import type { Database } from '../db.js';
import type { RelayEmitter } from '../emitter.js';
import { coerceError, describeError } from '../errors.js';
import type { RelayEvent } from '../events.js';
import type { Logger } from '../logger.js';
import type { RelayMetrics } from '../metrics.js';
import { observeOutcome } from '../observe.js';
import { planOutcomes } from '../outcome.js';
import { parseRetryAfter } from '../retry.js';
import { claimDeliveries } from '../sql/claimDeliveries.js';
import type { ClaimedRow, ClaimOptions } from '../sql/claimDeliveries.js';
import { finishDeliveries } from '../sql/finishDeliveries.js';
import type { AttemptRecord, StatusUpdate } from '../sql/finishDeliveries.js';
import { reclaimExpiredLeases, releaseOwnLeases } from '../sql/releaseLeases.js';
import { defaultClassify } from '../target.js';
import type { TargetPlugin, Verdict } from '../target.js';
import { send } from '../transport.js';
import type { OutboundRequest, OutboundResponse } from '../transport.js';

export interface DispatcherOptions {
  /** Rows per claim. */
  batchSize?: number;
  /** Fallback poll when nothing wakes the dispatcher. */
  pollIntervalMs?: number;
  /** Least time between two claims while caught up: wake-ups inside it are coalesced into one claim (10 ms). */
  claimIntervalMs?: number;
  /** Longest a result waits in memory to be written with others (10 ms). */
  flushIntervalMs?: number;
  /** Per-request timeout. */
  requestTimeoutMs?: number;
  /** Lease per claim; must exceed the request timeout (default 2 x timeout + 30 s). */
  leaseMs?: number;
  /** Default concurrent requests per circuit key (a plugin may set its own). */
  concurrency?: number;
  /** Rows a key of a non-batching plugin may hold per request slot, claimed ahead of sending (16). */
  queueDepth?: number;
  /** Identifies this dispatcher's leases. */
  workerId?: string;
}

export interface ResolvedDispatcherOptions {
  batchSize: number;
  pollIntervalMs: number;
  claimIntervalMs: number;
  flushIntervalMs: number;
  requestTimeoutMs: number;
  leaseMs: number;
  concurrency: number;
  queueDepth: number;
  workerId: string;
}

export function resolveDispatcherOptions(o: DispatcherOptions = {}): ResolvedDispatcherOptions {
  const requestTimeoutMs = o.requestTimeoutMs ?? 10_000;
  const leaseMs = o.leaseMs ?? 2 * requestTimeoutMs + 30_000;
  if (o.queueDepth !== undefined && !(Number.isInteger(o.queueDepth) && o.queueDepth >= 1)) throw new Error(`dispatcher queueDepth must be a whole number >= 1 (got ${o.queueDepth})`);
  if (leaseMs <= requestTimeoutMs) throw new Error(`dispatcher leaseMs (${leaseMs}) must be longer than requestTimeoutMs (${requestTimeoutMs})`);
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

/** Slack between the end of a request's timeout and the end of its row's lease (clocks, the result write). */
const LEASE_MARGIN_MS = 2_000;

export interface Claimed extends Omit<ClaimedRow, 'event_timestamp' | 'event_data' | 'event_request_id'> {
  event: RelayEvent;
  /** When this dispatcher's lease on the row runs out. */
  leaseUntil: number;
}

interface KeyState {
  plugin: TargetPlugin;
  queue: Claimed[];
  inflightRequests: number;
  inflightRows: number;
  /** When a partial batch started waiting for a request slot to finish (`linger`). */
  lingerSince: number | null;
}

interface Deps {
  db: Database;
  plugins: Map<string, TargetPlugin>;
  agent: UndiciDispatcher;
  logger: Logger;
  metrics: RelayMetrics;
  emitter: RelayEmitter;
}

export class Dispatcher {
  readonly options: ResolvedDispatcherOptions;
  readonly circuits: CircuitBreakers;
  private readonly keys = new Map<string, KeyState>();
  private readonly sends = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private attempts: AttemptRecord[] = [];
  private updates: StatusUpdate[] = [];
  private flushing: Promise<void> | null = null;
  private flushScheduled = false;
  private running = false;
  private loopDone: Promise<void> | null = null;
  private stopping: Promise<void> | null = null;
  private wakeUp: (() => void) | null = null;
  private woken = false;
  private dueTimer: NodeJS.Timeout | null = null;
  private dueAt = Infinity;
  private lastReclaim = 0;
  private lastClaimAt = 0;
  /** The last claim may have left due rows behind (it was full, or capacity stopped it). */
  private backlogged = true;
  /** Keys the last claim left out or filled to their room: they may have due rows in the database. */
  private backloggedKeys = new Set<string>();
  private readonly lingering = new Set<string>();
  /** When each batching key last sent a request (recent entries only). */
  private readonly lastSend = new Map<string, number>();

  constructor(
    private readonly deps: Deps,
    options: DispatcherOptions = {},
  ) {
    this.options = resolveDispatcherOptions(options);
    this.circuits = new CircuitBreakers(
      (key) => this.circuitOptions(key),
      (t) => this.onCircuit(t),
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
    this.woken = true;
    const w = this.wakeUp;
    this.wakeUp = null;
    w?.();
  }

  /**
   * Stop claiming, let in-flight requests finish (bounded by `timeoutMs`, then abort them), write every
   * result, and hand back leases of rows that were claimed but never sent. Safe to call twice.
   */
  stop({ timeoutMs = 10_000 }: { timeoutMs?: number } = {}): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      this.running = false;
      this.wake();
      await this.loopDone;
      const unsent = [...this.keys.values()].flatMap((k) => k.queue.splice(0));
      await releaseOwnLeases(this.deps.db.sequelize, this.options.workerId, unsent.map((r) => r.id), Date.now()).catch(
        (err) => this.report(err, 'release'),
      );
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((r) => (timer = setTimeout(r, timeoutMs)));
      await Promise.race([Promise.allSettled([...this.sends]), deadline]);
      if (this.sends.size > 0) {
        this.abort.abort(new Error('dispatcher stopping'));
        await Promise.allSettled([...this.sends]);
      }
      clearTimeout(timer);
      if (this.dueTimer) clearTimeout(this.dueTimer);
      await this.flush();
    })();
    return this.stopping;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      this.woken = false;
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
      if (claimed < this.options.batchSize || this.localRows() >= 2 * this.options.batchSize) {
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
    if (this.woken || !this.running) return Promise.resolve();
    const circuitAt = this.circuits.nextChangeAt();
    const wait = circuitAt === null ? ms : Math.max(0, Math.min(ms, circuitAt - Date.now()));
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wakeUp = null;
        resolve();
      }, wait);
      this.wakeUp = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private async reclaimIfDue(): Promise<void> {
    const every = Math.min(Math.max(this.options.leaseMs / 2, 100), 30_000);
    const now = Date.now();
    if (now - this.lastReclaim < every) return;
    this.lastReclaim = now;
    const n = await reclaimExpiredLeases(this.deps.db.sequelize, now);
    if (n > 0) this.deps.logger.warn({ count: n }, `reclaimed ${n} deliveries whose lease expired`);
  }

  private localRows(): number {
    let n = 0;
    for (const k of this.keys.values()) n += k.queue.length + k.inflightRows;
    return n;
  }

  /**
   * Rows one key may hold here, queued and in flight: its concurrency times a full batch or `queueDepth`,
   * whichever is larger. With a cap of one row per request slot, one webhook endpoint cost a claim
   * round trip per delivery and topped out near 390 deliveries/s; queued rows are sent only while their
   * lease covers the request (`dropStale`), so depth never risks a second dispatcher sending them too.
   */
  private cap(plugin: TargetPlugin): number {
    return (plugin.concurrency ?? this.options.concurrency) * Math.max(plugin.batch?.maxSize ?? 1, this.options.queueDepth);
  }

  /**
   * Queued rows whose lease would run out before a request started now could finish (a slow key held them
   * too long) go back to the queue unsent, so no other dispatcher can claim a row while we may still send it.
   */
  private dropStale(k: KeyState): void {
    const { requestTimeoutMs, leaseMs } = this.options;
    const latest = Date.now() + requestTimeoutMs + Math.min(LEASE_MARGIN_MS, (leaseMs - requestTimeoutMs) / 2);
    let n = 0;
    while (n < k.queue.length && k.queue[n]!.leaseUntil < latest) n++;
    if (n === 0) return;
    const stale = k.queue.splice(0, n).map((r) => r.id);
    releaseOwnLeases(this.deps.db.sequelize, this.options.workerId, stale, Date.now()).catch((err) => this.report(err, 'release'));
  }

  private async claim(onlyKey?: string): Promise<number> {
    // A relay with no targets (say, a mentor without DEVICES_API_URL) has nothing it could claim.
    if (this.deps.plugins.size === 0) return 0;
    const room = 2 * this.options.batchSize - this.localRows();
    if (room <= 0 && onlyKey === undefined) {
      this.backlogged = true;
      return 0;
    }
    const exclude = onlyKey === undefined ? this.circuits.blockedKeys() : [];
    // A key never holds more than its cap (concurrency x batch size) here, queued and in flight together.
    const heldKeyRoom: Record<string, number> = {};
    if (onlyKey === undefined) {
      for (const [key, k] of this.keys) {
        const room = this.cap(k.plugin) - k.queue.length - k.inflightRows;
        if (room <= 0) exclude.push(key);
        else heldKeyRoom[key] = room;
      }
    }
    const perKeyCap: Record<string, number> = {};
    for (const p of this.deps.plugins.values()) perKeyCap[p.name] = onlyKey === undefined ? this.cap(p) : 1;
    const { db } = this.deps;
    const claimOptions: ClaimOptions = {
      dialect: db.dialect,
      owner: this.options.workerId,
      now: Date.now(),
      leaseMs: this.options.leaseMs,
      limit: onlyKey === undefined ? Math.min(this.options.batchSize, room) : 1,
      perKeyCap,
      defaultPerKeyCap: 1,
      heldKeyRoom,
      excludeKeys: exclude,
      targets: [...this.deps.plugins.keys()],
      onlyKey,
    };
    // On SQLite a lone UPDATE that meets a flush transaction waits in SQLite's busy handler, which sleeps 1,
    // 2, 5, 10 ms...: 12 ms per claim measured while draining a backlog. Queued in our writer queue it costs 1 ms.
    const rows =
      db.dialect === 'sqlite'
        ? await db.transaction((t) => claimDeliveries(db.sequelize, claimOptions, t))
        : await claimDeliveries(db.sequelize, claimOptions);
    if (onlyKey === undefined) {
      this.backlogged = rows.length >= claimOptions.limit;
      const got = new Map<string, { n: number; target: string }>();
      for (const r of rows) got.set(r.circuit_key, { n: (got.get(r.circuit_key)?.n ?? 0) + 1, target: r.target });
      this.backloggedKeys = new Set(exclude);
      for (const [key, { n, target }] of got) if (n >= (heldKeyRoom[key] ?? perKeyCap[target] ?? 1)) this.backloggedKeys.add(key);
    }
    if (rows.length === 0) return 0;
    const lost: number[] = [];
    // Rows of one event (its mentor and webhook deliveries) share one parsed copy.
    const events = new Map<string, RelayEvent>();
    for (const { event_timestamp: timestamp, event_data: data, event_request_id: requestId, ...row } of rows) {
      const plugin = this.deps.plugins.get(row.target);
      if (data === null || timestamp === null || !plugin) {
        lost.push(row.id);
        continue;
      }
      let event = events.get(row.event_id);
      if (!event) {
        event = { id: row.event_id, type: row.event_type, deviceid: row.deviceid, timestamp, data: JSON.parse(data), requestId };
        events.set(row.event_id, event);
      }
      let k = this.keys.get(row.circuit_key);
      if (!k) {
        k = { plugin, queue: [], inflightRequests: 0, inflightRows: 0, lingerSince: null };
        this.keys.set(row.circuit_key, k);
      }
      k.queue.push({ ...row, event, leaseUntil: claimOptions.now + claimOptions.leaseMs });
    }
    if (lost.length > 0) {
      // The event row is gone (pruned) or no plugin is registered: dead-letter with the reason, never spin.
      this.updates.push({ ids: lost, status: 'dead', spent: 0, nextAttemptAt: null, statusCode: null, error: 'event or target plugin missing' });
      this.scheduleFlush();
    }
    for (const key of new Set(rows.map((r) => r.circuit_key))) this.pump(key, onlyKey !== undefined);
    return rows.length;
  }

  /**
   * May a delivery for `key` that is being published right now skip the database round trip of a claim
   * (written already leased to us, sent from memory after commit)? Only while this dispatcher is running and
   * caught up (no due rows of that key left behind by the last claim, so nothing older is overtaken), the
   * key's circuit is closed and the key has room. `adding` counts rows of the same publish already taken.
   */
  acceptsDirect(key: string, plugin: TargetPlugin, adding: number): boolean {
    if (!this.running || this.stopping || this.backlogged || this.backloggedKeys.has(key)) return false;
    if (this.circuits.state(key) !== 'closed') return false;
    if (this.localRows() + adding >= 2 * this.options.batchSize) return false;
    const k = this.keys.get(key);
    const held = k ? k.queue.length + k.inflightRows : 0;
    return held + adding < this.cap(plugin);
  }

  /** Leased rows written by a publish that has committed: queue and send them as if claimed. */
  enqueueDirect(rows: Claimed[]): void {
    if (!this.running) {
      releaseOwnLeases(this.deps.db.sequelize, this.options.workerId, rows.map((r) => r.id), Date.now()).catch((err) => this.report(err, 'release'));
      this.wake();
      return;
    }
    const touched = new Set<string>();
    for (const row of rows) {
      const plugin = this.deps.plugins.get(row.target)!;
      let k = this.keys.get(row.circuit_key);
      if (!k) {
        k = { plugin, queue: [], inflightRequests: 0, inflightRows: 0, lingerSince: null };
        this.keys.set(row.circuit_key, k);
      }
      k.queue.push(row);
      touched.add(row.circuit_key);
    }
    for (const key of touched) this.pump(key);
  }

  get leaseOptions(): { owner: string; leaseMs: number } {
    return { owner: this.options.workerId, leaseMs: this.options.leaseMs };
  }

  private async probe(): Promise<void> {
    for (const key of this.circuits.takeProbes()) {
      const n = await this.claim(key);
      if (n === 0) this.circuits.probeSkipped(key);
    }
  }

  private pump(key: string, probe = false): void {
    const k = this.keys.get(key);
    if (!k) return;
    const limit = k.plugin.concurrency ?? this.options.concurrency;
    if (!probe && k.queue.length > 0 && this.circuits.state(key) !== 'closed') {
      // The circuit opened while these waited: hand them back unsent so they spend no attempt.
      const unsent = k.queue.splice(0).map((r) => r.id);
      if (k.inflightRequests === 0) this.keys.delete(key);
      releaseOwnLeases(this.deps.db.sequelize, this.options.workerId, unsent, Date.now()).catch((err) => this.report(err, 'release'));
      return;
    }
    this.dropStale(k);
    while (k.queue.length > 0 && k.inflightRequests < limit && this.running) {
      if (!probe && this.linger(k, key)) break;
      const group = this.takeGroup(k);
      if (k.plugin.batch) this.lastSend.set(key, Date.now());
      k.inflightRequests += 1;
      k.inflightRows += group.length;
      const p = this.sendGroup(k.plugin, key, group, probe)
        .catch((err) => this.report(err, 'send'))
        .finally(() => {
          k.inflightRequests -= 1;
          k.inflightRows -= group.length;
          this.sends.delete(p);
          if (k.queue.length === 0 && k.inflightRequests === 0) this.keys.delete(key);
          else this.pump(key);
          // Freed capacity matters only if due rows were left in the database for want of it.
          if (this.backlogged || this.backloggedKeys.has(key)) this.wake();
        });
      this.sends.add(p);
    }
  }

  /**
   * Should a batching key hold back a partial batch? Only under a stream — one of its requests is out, or
   * it sent one less than `claimIntervalMs` ago — and for at most `claimIntervalMs`: rows that arrive
   * meanwhile, one per commit, then share one request instead of one each. A key that was idle sends at
   * once, so a lone record pays no added latency.
   */
  private linger(k: KeyState, key: string): boolean {
    const batch = k.plugin.batch;
    const now = Date.now();
    const sentAt = this.lastSend.get(key);
    // (Kept apart from the key's state, which is dropped whenever its queue empties between two records.)
    if (sentAt !== undefined && now - sentAt >= this.options.claimIntervalMs) this.lastSend.delete(key);
    const streaming = k.inflightRequests > 0 || (sentAt !== undefined && now - sentAt < this.options.claimIntervalMs);
    if (!batch || !streaming || k.queue.length >= batch.maxSize) {
      k.lingerSince = null;
      return false;
    }
    k.lingerSince ??= now;
    const left = k.lingerSince + this.options.claimIntervalMs - now;
    if (left <= 0) {
      k.lingerSince = null;
      return false;
    }
    if (!this.lingering.has(key)) {
      this.lingering.add(key);
      setTimeout(() => {
        this.lingering.delete(key);
        this.pump(key);
      }, left);
    }
    return true;
  }

  /** The head of the queue plus, for a batching plugin, every queued row with the same batch key. */
  private takeGroup(k: KeyState): Claimed[] {
    const head = k.queue.shift()!;
    const batch = k.plugin.batch;
    const bkey = batch ? batch.key(head.event) : null;
    if (!batch || bkey === null) return [head];
    const group = [head];
    for (let i = 0; i < k.queue.length && group.length < batch.maxSize; ) {
      const r = k.queue[i]!;
      if (batch.key(r.event) === bkey) {
        group.push(r);
        k.queue.splice(i, 1);
      } else i++;
    }
    return group;
  }

  private async sendGroup(plugin: TargetPlugin, key: string, rows: Claimed[], probe: boolean): Promise<void> {
    const endpointId = rows[0]!.endpoint_id;
    const events = rows.map((r) => r.event);
    const startedAt = Date.now();
    let req: OutboundRequest | null = null;
    let res: OutboundResponse | null = null;
    let error: string | null = null;
    let refused = false;
    try {
      req = await plugin.prepare(events, { endpointId });
      res = await send(this.deps.agent, req, this.options.requestTimeoutMs, this.abort.signal);
    } catch (err) {
      error = this.abort.signal.aborted ? 'aborted: dispatcher stopping' : describeError(err);
      // A plugin refuses to build a request it can never send (say, a deleted endpoint) with `permanent: true`.
      refused = req === null && (err as { permanent?: unknown } | null)?.permanent === true;
    }
    const durationMs = Date.now() - startedAt;
    const verdict: Verdict = res ? (plugin.classify ?? defaultClassify)(res) : refused ? 'permanent' : 'retry';

    // One bad record must not sink a whole batch: a permanent answer to a batch is retried one by one.
    if (verdict === 'permanent' && rows.length > 1) {
      await Promise.all(rows.map((r) => this.sendGroup(plugin, key, [r], probe)));
      return;
    }

    // Only a request that went out says anything about the target's health.
    const targetDown = req !== null && (res === null || res.statusCode >= 500);
    if (req === null) {
      // prepare failed: nothing was sent
    } else if (this.abort.signal.aborted && res === null) {
      // Interrupted by our own shutdown: not the target's fault, no attempt spent.
    } else if (targetDown) this.circuits.recordFailure(key);
    else this.circuits.recordSuccess(key);

    const statusCode = res?.statusCode ?? null;
    if (res && verdict !== 'success') error = `HTTP ${statusCode}`;
    const released = (this.abort.signal.aborted && res === null) || (probe && targetDown);
    const plan = planOutcomes(rows, {
      verdict,
      released,
      statusCode,
      error,
      responseBody: res?.body ?? null,
      retryAfterMs: res && (statusCode === 429 || statusCode === 503) ? parseRetryAfter(res.headers['retry-after']) : null,
      startedAt,
      durationMs,
    }, plugin.retry);
    this.attempts.push(...plan.attempts);
    this.updates.push(...plan.updates);
    if (plan.nextRetryAt !== null) this.wakeAt(plan.nextRetryAt);
    this.scheduleFlush();
    observeOutcome(this.deps, {
      target: plugin.name,
      rows,
      verdict,
      released,
      statusCode,
      error,
      durationMs,
      dead: plan.dead,
      retrying: plan.retrying,
      circuitState: this.circuits.state(key),
    });
    if (plugin.onOutcome) {
      const info = { endpointId, events, verdict, statusCode, error, dead: plan.dead.length > 0 };
      Promise.resolve()
        .then(() => plugin.onOutcome!(info))
        .catch((err) => this.report(err, `${plugin.name}.onOutcome`));
    }
  }

  private wakeAt(at: number): void {
    if (at >= this.dueAt || !this.running) return;
    if (this.dueTimer) clearTimeout(this.dueTimer);
    this.dueAt = at;
    this.dueTimer = setTimeout(() => {
      this.dueTimer = null;
      this.dueAt = Infinity;
      this.wake();
    }, Math.max(0, at - Date.now()));
    this.dueTimer.unref?.();
  }

  /**
   * Results are written at most once per `flushIntervalMs`: under a stream of single-event requests (one
   * webhook endpoint) each completion arrives on its own, and writing each in its own round trip cost as
   * much as the request. The leases keep the rows ours until then.
   */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setTimeout(() => {
      this.flushScheduled = false;
      void this.flush();
    }, this.options.flushIntervalMs);
  }

  /** Write buffered results; a failed write keeps them and tries again (the leases still protect the rows). */
  flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => (this.attempts.length || this.updates.length ? this.flush() : undefined));
    if (this.attempts.length === 0 && this.updates.length === 0) return Promise.resolve();
    const attempts = this.attempts;
    const updates = this.updates;
    this.attempts = [];
    this.updates = [];
    const { db } = this.deps;
    this.flushing = finishDeliveries(db.sequelize, db.dialect, attempts, updates, this.options.workerId, Date.now(), (fn) => db.transaction(fn))
      .catch(async (err) => {
        this.report(err, 'flush');
        this.attempts = attempts.concat(this.attempts);
        this.updates = updates.concat(this.updates);
        await new Promise((r) => setTimeout(r, Math.min(this.options.pollIntervalMs, 1000)));
      })
      .finally(() => {
        this.flushing = null;
      });
    return this.flushing.then(() => {
      if (this.attempts.length || this.updates.length) {
        if (this.running || this.stopping) return this.flush();
      }
      return undefined;
    });
  }

  private circuitOptions(key: string): CircuitOptions {
    const name = key.split(':')[0]!;
    const plugin = this.deps.plugins.get(name);
    const attempts = plugin?.retry.maxAttempts ?? 4;
    return {
      // Open before a total outage can exhaust any delivery's attempts, so an outage of any length loses nothing.
      failureThreshold: plugin?.circuit?.failureThreshold ?? Math.max(1, Math.min(5, attempts - 1)),
      cooldownMs: plugin?.circuit?.cooldownMs ?? 5_000,
      maxCooldownMs: plugin?.circuit?.maxCooldownMs ?? 60_000,
    };
  }

  private onCircuit(t: CircuitTransition): void {
    const value = t.to === 'closed' ? 0 : t.to === 'half-open' ? 1 : 2;
    this.deps.metrics.circuit.set({ key: t.key }, value);
    const log = t.to === 'open' ? 'warn' : 'info';
    this.deps.logger[log]({ circuitKey: t.key, from: t.from, to: t.to }, `circuit for ${t.key} is ${t.to}`);
    this.deps.emitter.safeEmit(t.to === 'open' ? 'circuit:open' : t.to === 'half-open' ? 'circuit:half-open' : 'circuit:closed', t);
    if (t.to === 'half-open') this.wake();
  }

  private report(err: unknown, during: string): void {
    const error = coerceError(err);
    this.deps.logger.error({ during, error: describeError(error) }, `dispatcher error during ${during}`);
    this.deps.emitter.safeEmit('dispatcher:error', { error, during });
  }
}
