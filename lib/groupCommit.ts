/**
 * Group commit: the writes of concurrent callers in one database transaction, with one multi-row INSERT per
 * table and one outbox write for all their events, each caller answered only after the commit that holds
 * its rows. Why: an ingest alone is five sequential statement hops (BEGIN, SELECT device, INSERT record,
 * INSERT outbox, COMMIT) and SQLite has one writer, so at ~260 req/s its host sat 36% idle waiting in line
 * for the connection. A batch of N pays BEGIN, COMMIT and the inserts once.
 *
 * Same rule as the dispatcher's batching: an idle lane takes a caller at once (no linger at low rates);
 * while a lane is busy, callers gather and the next free lane takes up to `maxCallers` of them. SQLite
 * has one lane (one writer); PostgreSQL a few, bounded by the pool, each its own transaction. A further
 * lane opens only for a queue (`openLaneAt` callers waiting): several small batches cost PostgreSQL far
 * more than one of their sum (a statement and a commit each), so callers wait for the busy lane's commit
 * unless they are many. On the bench machine at saturation (16 connections), lanes opened at any wait cost
 * PostgreSQL 1.4-1.7 times the CPU per record forwarded and 2.1 times per record stored alone
 * (docs/performance.md, ninth round).
 *
 * Isolation. A caller's `work` runs in the shared transaction and may read through it, but writes only by
 * queueing (`insert`, `publish`), so a caller that throws is rejected alone: its queued rows are dropped.
 * A caller that must write directly (an upsert, an UPDATE) asks for `savepoint: true` and runs inside a
 * SAVEPOINT that is rolled back when it throws. When a statement fails outside a savepoint (a read that
 * aborted the PostgreSQL transaction, or the batch's INSERT hitting a unique violation or a refused value),
 * the batch rolls back and each caller is re-run in a transaction of its own, so exactly the failing caller
 * gets the error: `work` must therefore be safe to run again, which it is when its writes are queued.
 * A failed COMMIT is not re-run (its outcome may be unknown): those callers get the error, as a lone
 * transaction's would. Crash semantics are a lone transaction's: an answered caller's rows are committed.
 *
 * One statement (PostgreSQL): a batch whose callers only queue writes needs no transaction at all. Its rows,
 * events and deliveries go in one statement of data-modifying CTEs, which PostgreSQL runs atomically and
 * commits on its own: one round trip instead of BEGIN, INSERT, outbox INSERT, COMMIT (see `runStatement`).
 *
 * Riders (`ride`): the relay's own bookkeeping writes (the dispatcher's result flushes: always on SQLite,
 * on PostgreSQL while a lane is busy) that would each be a transaction of their own. While a lane is busy
 * they wait and are written in the batch that commits next, after its callers' rows: in its transaction,
 * or as more parts of its one statement (a rider given as `parts`); with no lane busy they are written on
 * their own. They are not callers: `commit:batch` does not count them. A rider's statement that fails
 * fails the batch; every caller is then re-run alone and the rider is rejected (its owner keeps its work
 * and writes it again later).
 */
import { BaseError } from 'sequelize';
import type { Transaction } from 'sequelize';
import type { Database } from './db.js';
import type { RelayEvent } from './events.js';
import type { ResolvedGroupCommitOptions } from './options.js';
import type { RoutedPublish } from './relay.js';
import { keepLeased, LEASED_COLUMNS, outboxParams, PG_ONE_STATEMENT_PARAMS, pgOutboxStatements } from './sql/insertOutbox.js';
import type { OutboxWritten, ReturnedDelivery } from './sql/insertOutbox.js';
import { binder, runSql } from './sql/driver.js';
import { insertRows, pgInsert } from './sql/insertRows.js';

/** What `work` receives: the shared transaction (for reads) and the queueing writers. */
export interface GroupTransaction {
  /** The batch's transaction. Read through it; write through it only with `savepoint: true`. */
  readonly transaction: Transaction;
  /**
   * Queue rows for `table`; written with the batch's other rows of that table in one INSERT before commit.
   * Columns are the first row's keys (a missing key is NULL); values are strings, numbers, booleans or null.
   * Table and column names are trusted identifiers, never user input.
   */
  insert(table: string, rows: Array<Record<string, unknown>>): void;
  /** Queue events for the outbox (as `relay.publish`), written in the batch's one outbox INSERT. */
  publish(events: RelayEvent | RelayEvent[], options?: { targets?: string[] }): void;
}

/** Options of one `relay.transaction(work, options)` call. */
export interface GroupWorkOptions {
  /** `work` writes through `tx.transaction` directly: run it in a SAVEPOINT of its own (one more statement). */
  savepoint?: boolean;
}

/** Emitted on `relay.events` as `commit:batch` after each committed batch. */
export interface BatchInfo {
  lane: number;
  /** Callers whose rows this commit holds. */
  callers: number;
  /** Callers rejected alone while the batch went on (their `work` threw). */
  rejected: number;
  rows: number;
  events: number;
  durationMs: number;
  /** A caller re-run alone after its batch failed. */
  isolated: boolean;
  /**
   * Written as one autocommitted statement with no BEGIN/COMMIT (PostgreSQL, when every caller only queued
   * writes), rather than in a transaction.
   */
  statement: boolean;
}

/** What the group commit needs of the relay's outbox. */
export interface GroupOutbox {
  /** Publish in `transaction` (a transaction batch). */
  publish(events: RelayEvent[], targets: string[] | undefined, transaction: Transaction): Promise<unknown>;
  /** Route and lease, outside any transaction (a one-statement batch writes the result itself). */
  route(events: RelayEvent[], targets: string[] | undefined): Promise<RoutedPublish | null>;
  /** The routed rows are committed: what the direct path does then. */
  handOver(routed: RoutedPublish, written: OutboxWritten): () => void;
}

interface Member {
  work: (tx: GroupTransaction) => Promise<unknown>;
  savepoint: boolean;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * A rider's writes as parts of a one-statement batch (PostgreSQL): data-modifying statements (no SELECT, no
 * RETURNING read), each value bound through `p`, which returns its placeholder.
 */
export type StatementParts = (p: (value: unknown) => string) => string[];

interface Rider {
  work: (t: Transaction) => Promise<void>;
  /** The same writes for a one-statement batch; a rider without them makes its batch a transaction. */
  parts?: StatementParts;
  resolve(): void;
  reject(error: unknown): void;
}

/** A rider's statement failed: the batch rolls back and every caller is re-run alone. */
class RiderFailed {
  constructor(readonly cause: unknown) {}
}

interface Queued {
  inserts: Array<{ table: string; columns: string[]; rows: unknown[][] }>;
  events: Array<{ targets: string[] | undefined; events: RelayEvent[] }>;
}

/** What a batch leaves: members to re-run alone, and members it had no room for. */
interface BatchResult {
  retry: Member[];
  deferred: Member[];
}

/** What a batch's members queued, and how each fared. */
interface Collected {
  ran: Array<{ member: Member; value: unknown }>;
  /** Members whose work ran and whose writes are queued (or would have been: see `Rollback`). */
  attempted: Member[];
  /** Members rejected alone (their work threw). */
  alone: Set<Member>;
  deferred: Member[];
  inserts: Map<string, { table: string; columns: string[]; rows: unknown[][] }>;
  publishes: Map<string, { targets: string[] | undefined; events: RelayEvent[] }>;
  rows: number;
  events: number;
  /** A member asked for `tx.transaction` in a batch run without one. */
  needsTransaction: boolean;
}

const collected = (): Collected => ({
  ran: [],
  attempted: [],
  alone: new Set(),
  deferred: [],
  inserts: new Map(),
  publishes: new Map(),
  rows: 0,
  events: 0,
  needsTransaction: false,
});

/** Thrown at a member that asks for `tx.transaction` in a one-statement batch: the batch becomes a transaction. */
class NeedsTransaction extends Error {
  constructor() {
    super('this batch runs without a transaction; it is re-run in one');
  }
}

/**
 * Did PostgreSQL answer the statement with an error (so nothing of it was committed)? A driver error with a
 * severity and a SQLSTATE; not a lost connection or a timeout, after which the outcome is unknown.
 */
function rejectedByServer(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e && typeof e === 'object'; depth++) {
    const x = e as { code?: unknown; severity?: unknown; original?: unknown; parent?: unknown };
    if (typeof x.severity === 'string' && typeof x.code === 'string' && /^[0-9A-Z]{5}$/.test(x.code)) return true;
    e = x.original ?? x.parent;
  }
  return false;
}

/** Thrown inside the batch's transaction to roll it back; `cause` is the statement's error. */
class Rollback {
  constructor(readonly cause: unknown) {}
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;
const SAVEPOINT = 'relay_group_member';

function scalar(v: unknown): unknown {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return v;
  throw new Error(`tx.insert takes strings, numbers, booleans and null (got ${Object.prototype.toString.call(v)}); serialise it first`);
}

export class GroupCommit {
  private readonly lanes: boolean[];
  private readonly openLaneAt: number;
  private readonly maxCallers: number;
  private readonly maxRows: number;
  private pending: Member[] = [];
  private riders: Rider[] = [];
  private busy_ = 0;
  private closed = false;
  private drained: Array<() => void> = [];

  constructor(
    private readonly db: Database,
    private readonly outbox: GroupOutbox,
    private readonly onBatch: (info: BatchInfo) => void,
    options: ResolvedGroupCommitOptions,
  ) {
    // Leave two pool connections for the dispatcher's claims and result writes.
    const poolMax = db.sequelize.config.pool?.max ?? 10;
    const lanes = db.dialect === 'sqlite' ? 1 : Math.max(1, Math.min(options.lanes, poolMax - 2));
    this.lanes = new Array<boolean>(lanes).fill(false);
    this.openLaneAt = options.openLaneAt;
    this.maxCallers = options.maxCallers;
    this.maxRows = options.maxRows;
  }

  /** Run `work` in the next batch; resolves with its value after the commit that holds its rows. */
  run<T>(work: (tx: GroupTransaction) => Promise<T>, options: GroupWorkOptions = {}): Promise<T> {
    if (this.closed) return Promise.reject(new Error('the relay is stopping: relay.transaction() takes no new work'));
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ work, savepoint: options.savepoint ?? false, resolve: resolve as (v: unknown) => void, reject });
      this.pump();
    });
  }

  /** A batch is in flight (a rider would be written in it or in the next one). */
  get busy(): boolean {
    return this.busy_ > 0;
  }

  /**
   * Write `work` in the next batch's transaction (or one of its own when no batch is coming); resolves after
   * the commit that holds it. For the relay's own bookkeeping, not for callers: see the module comment.
   */
  ride(work: (t: Transaction) => Promise<void>, parts?: StatementParts): Promise<void> {
    if (this.closed && this.busy_ === 0 && this.pending.length === 0) return this.db.transaction(work);
    return new Promise<void>((resolve, reject) => {
      this.riders.push({ work, parts, resolve, reject });
      this.pump();
    });
  }

  /** Take no new work; resolves when every queued caller has been answered. */
  close(): Promise<void> {
    this.closed = true;
    if (this.busy_ === 0 && this.pending.length === 0 && this.riders.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.drained.push(resolve));
  }

  private pump(): void {
    // Riders alone take a lane only when none is busy: a busy lane's batch takes them (or the next one does).
    while ((this.pending.length > 0 || (this.riders.length > 0 && this.busy_ === 0)) && this.busy_ < this.lanes.length) {
      // Beside a busy lane, another opens only for a queue; fewer callers wait for the next batch.
      if (this.busy_ > 0 && this.pending.length < this.openLaneAt) break;
      const lane = this.lanes.indexOf(false);
      this.lanes[lane] = true;
      this.busy_ += 1;
      const batch = this.pending.splice(0, this.maxCallers);
      void this.runLane(lane, batch).finally(() => {
        this.lanes[lane] = false;
        this.busy_ -= 1;
        this.pump();
        if (this.busy_ === 0 && this.pending.length === 0 && this.riders.length === 0) for (const d of this.drained.splice(0)) d();
      });
    }
  }

  private async runLane(lane: number, batch: Member[]): Promise<void> {
    if (batch.length === 0) {
      // Only riders wait: one statement (PostgreSQL, when each has its parts) or one transaction of their own.
      const riders = this.riders.splice(0);
      const asStatement = this.db.dialect === 'postgres' && riders.every((r) => r.parts);
      await (
        asStatement
          ? this.writeStatement([], riders)
          : this.db.transaction(async (t) => {
              for (const r of riders) await r.work(t);
            })
      ).then(
        () => riders.forEach((r) => r.resolve()),
        (err: unknown) => riders.forEach((r) => r.reject(err)),
      );
      return;
    }
    try {
      const { retry, deferred } = await this.runBatch(lane, batch, false);
      // Callers the batch had no room for go first in the next one.
      this.pending.unshift(...deferred);
      this.pump();
      for (const m of retry) await this.runBatch(lane, [m], true);
    } catch (err) {
      // Not expected (runBatch settles its callers itself); never leave a caller hanging.
      for (const m of batch) m.reject(err);
    }
  }

  /**
   * One batch of `members`. Settles each member it ran, except those returned in `retry` (to re-run alone)
   * and `deferred` (not run: the batch was full). On PostgreSQL a batch whose callers only queue writes is
   * one autocommitted statement (`runStatement`); otherwise, and on SQLite, one transaction.
   */
  private async runBatch(lane: number, members: Member[], isolated: boolean): Promise<BatchResult> {
    if (this.db.dialect === 'postgres' && !isolated && this.riders.every((r) => r.parts) && members.every((m) => !m.savepoint)) {
      const done = await this.runStatement(lane, members);
      if (!Array.isArray(done)) return done;
      // Needs a transaction after all: the members not rejected alone, their work run again.
      members = done;
    }
    return this.runTransaction(lane, members, isolated);
  }

  /**
   * Run each member's work, queueing its writes into `c` (`t` null: no transaction, and a member that asks
   * for `tx.transaction` stops the run with `c.needsTransaction`). A member whose work throws is rejected
   * alone; a statement error outside a savepoint throws `Rollback`.
   */
  private async collect(members: Member[], t: Transaction | null, c: Collected): Promise<void> {
    for (let i = 0; i < members.length; i++) {
      if (c.rows + c.events >= this.maxRows && c.ran.length > 0) {
        c.deferred = members.slice(i);
        break;
      }
      const member = members[i]!;
      c.attempted.push(member);
      const queued: Queued = { inserts: [], events: [] };
      let open = true;
      const tx = this.groupTransaction(t, queued, () => open, c);
      let value: unknown;
      try {
        value = await this.runMember(member, tx, t);
      } catch (err) {
        open = false;
        if (err instanceof Rollback || c.needsTransaction) throw err;
        member.reject(err);
        c.alone.add(member);
        c.attempted = c.attempted.filter((m) => m !== member);
        continue;
      }
      open = false;
      // A member that caught the refusal of `tx.transaction` and went on must still run in a transaction.
      if (c.needsTransaction) throw new NeedsTransaction();
      c.ran.push({ member, value });
      for (const q of queued.inserts) {
        const key = `${q.table}(${q.columns.join(',')})`;
        const group = c.inserts.get(key) ?? { table: q.table, columns: q.columns, rows: [] };
        for (const r of q.rows) group.rows.push(r);
        c.inserts.set(key, group);
        c.rows += q.rows.length;
      }
      for (const p of queued.events) {
        const key = p.targets ? JSON.stringify(p.targets) : '*';
        const group = c.publishes.get(key) ?? { targets: p.targets, events: [] };
        for (const e of p.events) group.events.push(e);
        c.publishes.set(key, group);
        c.events += p.events.length;
      }
    }
  }

  /**
   * PostgreSQL: the batch as one statement, with no BEGIN and no COMMIT. Every member's work runs first with
   * no transaction; then its queued rows and the outbox write (events and deliveries) go in one statement of
   * data-modifying CTEs, which PostgreSQL runs atomically and commits on its own: one round trip for the
   * batch instead of four (BEGIN, INSERT records, INSERT outbox, COMMIT). Returns the members to run as a
   * transaction batch instead when the batch needs one after all (a member read through `tx.transaction`, or
   * the statement would be too large), or when routing failed: their work runs again (safe: see the module
   * comment), and a failure is handled as it always has been.
   *
   * When the statement fails with an error PostgreSQL sent, nothing of it was committed: the members are
   * re-run alone, as a failed statement in a transaction batch is. Any other failure (the connection lost)
   * leaves the outcome unknown, as a failed COMMIT does: every member gets the error.
   */
  private async runStatement(lane: number, members: Member[]): Promise<BatchResult | Member[]> {
    const started = Date.now();
    const c = collected();
    try {
      await this.collect(members, null, c);
    } catch (err) {
      if (c.needsTransaction || err instanceof NeedsTransaction) return members.filter((m) => !c.alone.has(m));
      if (err instanceof Rollback) return this.afterFailedStatement(c, err.cause, false);
      throw err;
    }
    if (c.ran.length === 0) return { retry: [], deferred: c.deferred };
    const bind: unknown[] = [];
    const parts: Array<{ sql: string; returning: boolean }> = [];
    const written: Array<{ routed: RoutedPublish; written: OutboxWritten }> = [];
    try {
      let params = 0;
      for (const g of c.inserts.values()) params += g.rows.length * g.columns.length;
      const routed: RoutedPublish[] = [];
      for (const pub of c.publishes.values()) {
        const r = await this.outbox.route(pub.events, pub.targets);
        if (!r) continue;
        routed.push(r);
        params += outboxParams(r.events.length, r.rows.length);
      }
      if (params > PG_ONE_STATEMENT_PARAMS) return members.filter((m) => !c.alone.has(m));
      // In a fixed order (by table and columns), so that batches of the same kinds of rows share one
      // statement text, prepared once per connection (see `runSql`).
      const [, p] = binder(bind);
      for (const [, g] of [...c.inserts].sort(([a], [b]) => (a < b ? -1 : 1)))
        parts.push({ sql: pgInsert(g.table, g.columns, g.rows, p), returning: false });
      for (const r of routed) {
        if (r.events.length === 0) continue;
        const w = pgOutboxStatements(r.events, r.rows, bind, r.now);
        parts.push({ sql: w.events, returning: false });
        if (w.deliveries) parts.push({ sql: w.deliveries, returning: w.returning });
        written.push({ routed: r, written: { leased: new Map(), stored: w.stored } });
      }
    } catch {
      // Routing failed (a plugin's route threw): the transaction batch handles it as it always has.
      return members.filter((m) => !c.alone.has(m));
    }
    // Riders that waited while the lane was busy (result flushes), written in the same statement.
    const riders = this.riders.splice(0);
    try {
      const rows = await this.writeStatement(parts, riders, bind);
      // Leased ids are unique across the batch's publishes (event id and circuit key), so each keeps all.
      for (const w of written) keepLeased(w.written, rows);
    } catch (err) {
      for (const r of riders) r.reject(err);
      return this.afterFailedStatement(c, err, true, riders.length > 0);
    }
    for (const w of written) this.outbox.handOver(w.routed, w.written)();
    return this.committed(lane, c, riders, started, false, true);
  }

  /** The batch committed: answer its riders and callers, report it. */
  private committed(lane: number, c: Collected, riders: Rider[], started: number, isolated: boolean, statement: boolean): BatchResult {
    for (const r of riders) r.resolve();
    for (const { member, value } of c.ran) member.resolve(value);
    if (c.ran.length > 0)
      this.onBatch({
        lane,
        callers: c.ran.length,
        rejected: c.alone.size,
        rows: c.rows,
        events: c.events,
        durationMs: Date.now() - started,
        isolated,
        statement,
      });
    return { retry: [], deferred: c.deferred };
  }

  /**
   * `sent`: the batch's statement was sent (else a member's own statement failed, before anything was
   * written); `rode`: riders were in it (so the one caller may not be the one at fault).
   */
  private afterFailedStatement(c: Collected, err: unknown, sent: boolean, rode = false): BatchResult {
    if (sent && !rejectedByServer(err)) {
      for (const m of c.attempted) m.reject(err);
      return { retry: [], deferred: c.deferred };
    }
    if (c.attempted.length === 1 && !rode) {
      c.attempted[0]!.reject(err);
      return { retry: [], deferred: c.deferred };
    }
    return { retry: c.attempted, deferred: c.deferred };
  }

  /**
   * Run `parts` (and `riders`' parts) as one statement of data-modifying CTEs, autocommitted; returns the
   * rows of the parts that return leased deliveries.
   */
  private async writeStatement(
    parts: Array<{ sql: string; returning: boolean }>,
    riders: Rider[],
    bind: unknown[] = [],
  ): Promise<ReturnedDelivery[]> {
    const [, p] = binder(bind);
    const all = [...parts];
    for (const r of riders) for (const sql of r.parts!(p)) all.push({ sql, returning: false });
    if (all.length === 0) return [];
    const ctes = all.map((x, i) => `w${i} AS (${x.sql})`).join(', ');
    const reads = all.flatMap((x, i) => (x.returning ? [`SELECT ${LEASED_COLUMNS} FROM w${i}`] : []));
    return runSql<ReturnedDelivery>(
      this.db.sequelize,
      `WITH ${ctes} ${reads.length > 0 ? reads.join(' UNION ALL ') : 'SELECT 1'}`,
      bind,
      undefined,
      // Named only while it is INSERTs alone: riders bring UPDATEs by id, which must not keep a generic
      // plan made while the table was small (see `runSql`).
      { prepare: riders.length === 0 },
    );
  }

  /** One transaction for `members` (see `runBatch`). */
  private async runTransaction(lane: number, members: Member[], isolated: boolean): Promise<BatchResult> {
    const started = Date.now();
    const c = collected();
    let committing = false;
    let riders: Rider[] = [];
    try {
      await this.db.transaction(async (t) => {
        await this.collect(members, t, c);
        try {
          for (const g of c.inserts.values()) await insertRows(this.db.sequelize, g.table, g.columns, g.rows, t);
          for (const p of c.publishes.values()) await this.outbox.publish(p.events, p.targets, t);
        } catch (err) {
          throw new Rollback(err);
        }
        // Riders that waited while the lane was busy (a re-run alone takes none).
        if (!isolated) riders = this.riders.splice(0);
        for (const r of riders) {
          try {
            await r.work(t);
          } catch (err) {
            throw new RiderFailed(err);
          }
        }
        committing = true;
      });
    } catch (err) {
      if (err instanceof RiderFailed) {
        for (const r of riders) r.reject(err.cause);
        // The callers did nothing wrong: each is re-run alone.
        return { retry: c.ran.map((x) => x.member), deferred: c.deferred };
      }
      for (const r of riders) r.reject(err);
      const cause = err instanceof Rollback ? err.cause : err;
      if (committing || c.attempted.length === 0) {
        // The COMMIT (its outcome unknown) or the BEGIN failed: answer as a lone transaction would.
        for (const m of members) if (!c.alone.has(m)) m.reject(cause);
        return { retry: [], deferred: [] };
      }
      if (c.attempted.length === 1) {
        c.attempted[0]!.reject(cause);
        return { retry: [], deferred: c.deferred };
      }
      // Someone's statement failed and the transaction is gone: re-run each caller alone.
      return { retry: c.attempted, deferred: c.deferred };
    }
    return this.committed(lane, c, riders, started, isolated, false);
  }

  /** Run one member's work; a statement error outside a savepoint becomes a `Rollback` of the batch. */
  private async runMember(member: Member, tx: GroupTransaction, t: Transaction | null): Promise<unknown> {
    const query = (sql: string) =>
      this.db.sequelize.query(sql, { transaction: t }).catch((err: unknown) => Promise.reject(new Rollback(err)));
    if (!member.savepoint) {
      try {
        return await member.work(tx);
      } catch (err) {
        throw err instanceof BaseError ? new Rollback(err) : err;
      }
    }
    await query(`SAVEPOINT ${SAVEPOINT}`);
    try {
      const value = await member.work(tx);
      await query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
      return value;
    } catch (err) {
      if (err instanceof Rollback) throw err;
      await query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
      await query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
      throw err;
    }
  }

  /** The `tx` a member's work gets; with `transaction` null, asking for `tx.transaction` stops the batch's run. */
  private groupTransaction(transaction: Transaction | null, queued: Queued, open: () => boolean, c: Collected): GroupTransaction {
    const check = (what: string) => {
      if (!open()) throw new Error(`tx.${what} was called after the work's promise settled; await it inside the work`);
    };
    return {
      get transaction(): Transaction {
        if (transaction) return transaction;
        c.needsTransaction = true;
        throw new NeedsTransaction();
      },
      insert(table, rows) {
        check('insert');
        if (!IDENTIFIER.test(table)) throw new Error(`tx.insert: ${JSON.stringify(table)} is not a plain table name`);
        if (rows.length === 0) return;
        const columns = Object.keys(rows[0]!);
        for (const c of columns) if (!IDENTIFIER.test(c)) throw new Error(`tx.insert: ${JSON.stringify(c)} is not a plain column name`);
        queued.inserts.push({ table, columns, rows: rows.map((r) => columns.map((c) => scalar(r[c]))) });
      },
      publish(events, options = {}) {
        check('publish');
        const list = Array.isArray(events) ? events : [events];
        // Checked here so that a bad id rejects its caller alone instead of failing the batch's outbox write.
        for (const e of list) if (e.id.includes('.')) throw new Error(`event id must not contain "." (got ${JSON.stringify(e.id)})`);
        if (list.length > 0) queued.events.push({ targets: options.targets, events: list });
      },
    };
  }
}
