/**
 * Group commit: the writes of concurrent callers in one database transaction, with one multi-row INSERT per
 * table and one outbox write for all their events, each caller answered only after the commit that holds
 * its rows. Why: an ingest alone is five sequential statement hops (BEGIN, SELECT device, INSERT record,
 * INSERT outbox, COMMIT) and SQLite has one writer, so at ~260 req/s its host sat 36% idle waiting in line
 * for the connection. A batch of N pays BEGIN, COMMIT and the inserts once.
 *
 * Same rule as the dispatcher's batching: an idle lane takes a caller at once (no linger at low rates);
 * while every lane is busy, callers gather and the next free lane takes up to `maxCallers` of them. SQLite
 * has one lane (one writer); PostgreSQL a few, bounded by the pool, each its own transaction.
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
 * Riders (`ride`): the relay's own bookkeeping writes (the dispatcher's result flushes: always on SQLite,
 * on PostgreSQL while a lane is busy) that would each be a transaction of their own. While a lane is busy
 * they wait and are written in the transaction of the batch that commits next, after its callers' rows;
 * with no lane busy they take a transaction of their own, as before. They are not callers: `commit:batch` does not count them. A rider's statement that fails rolls the
 * batch back; every caller is then re-run alone and the rider is rejected (its owner keeps its work and
 * writes it again later).
 */
import { BaseError } from 'sequelize';
import type { Transaction } from 'sequelize';
import type { Database } from './db.js';
import type { RelayEvent } from './events.js';
import type { ResolvedGroupCommitOptions } from './options.js';
import { insertRows } from './sql/insertRows.js';

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
}

type Publish = (events: RelayEvent[], targets: string[] | undefined, transaction: Transaction) => Promise<unknown>;

interface Member {
  work: (tx: GroupTransaction) => Promise<unknown>;
  savepoint: boolean;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

interface Rider {
  work: (t: Transaction) => Promise<void>;
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
  private readonly maxCallers: number;
  private readonly maxRows: number;
  private pending: Member[] = [];
  private riders: Rider[] = [];
  private busy_ = 0;
  private closed = false;
  private drained: Array<() => void> = [];

  constructor(
    private readonly db: Database,
    private readonly publish: Publish,
    private readonly onBatch: (info: BatchInfo) => void,
    options: ResolvedGroupCommitOptions,
  ) {
    // Leave two pool connections for the dispatcher's claims and result writes.
    const poolMax = db.sequelize.config.pool?.max ?? 10;
    const lanes = db.dialect === 'sqlite' ? 1 : Math.max(1, Math.min(options.lanes, poolMax - 2));
    this.lanes = new Array<boolean>(lanes).fill(false);
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
  ride(work: (t: Transaction) => Promise<void>): Promise<void> {
    if (this.closed && this.busy_ === 0 && this.pending.length === 0) return this.db.transaction(work);
    return new Promise<void>((resolve, reject) => {
      this.riders.push({ work, resolve, reject });
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
      // Only riders wait: one transaction of their own.
      const riders = this.riders.splice(0);
      await this.db
        .transaction(async (t) => {
          for (const r of riders) await r.work(t);
        })
        .then(
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
   * One transaction for `members`. Settles each member it ran, except those returned in `retry` (to re-run
   * alone) and `deferred` (not run: the batch was full).
   */
  private async runBatch(lane: number, members: Member[], isolated: boolean): Promise<{ retry: Member[]; deferred: Member[] }> {
    const started = Date.now();
    const ran: Array<{ member: Member; value: unknown }> = [];
    let deferred: Member[] = [];
    let attempted: Member[] = [];
    const alone = new Set<Member>();
    let committing = false;
    let rows = 0;
    let events = 0;
    let riders: Rider[] = [];
    try {
      await this.db.transaction(async (t) => {
        const inserts = new Map<string, { table: string; columns: string[]; rows: unknown[][] }>();
        const publishes = new Map<string, { targets: string[] | undefined; events: RelayEvent[] }>();
        for (let i = 0; i < members.length; i++) {
          if (rows + events >= this.maxRows && ran.length > 0) {
            deferred = members.slice(i);
            break;
          }
          const member = members[i]!;
          attempted.push(member);
          const queued: Queued = { inserts: [], events: [] };
          let open = true;
          const tx = this.groupTransaction(t, queued, () => open);
          let value: unknown;
          try {
            value = await this.runMember(member, tx, t);
          } catch (err) {
            open = false;
            if (err instanceof Rollback) throw err;
            member.reject(err);
            alone.add(member);
            attempted = attempted.filter((m) => m !== member);
            continue;
          }
          open = false;
          ran.push({ member, value });
          for (const q of queued.inserts) {
            const key = `${q.table}(${q.columns.join(',')})`;
            const group = inserts.get(key) ?? { table: q.table, columns: q.columns, rows: [] };
            for (const r of q.rows) group.rows.push(r);
            inserts.set(key, group);
            rows += q.rows.length;
          }
          for (const p of queued.events) {
            const key = p.targets ? JSON.stringify(p.targets) : '*';
            const group = publishes.get(key) ?? { targets: p.targets, events: [] };
            for (const e of p.events) group.events.push(e);
            publishes.set(key, group);
            events += p.events.length;
          }
        }
        try {
          for (const g of inserts.values()) await insertRows(this.db.sequelize, g.table, g.columns, g.rows, t);
          for (const p of publishes.values()) await this.publish(p.events, p.targets, t);
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
        return { retry: ran.map((x) => x.member), deferred };
      }
      for (const r of riders) r.reject(err);
      const cause = err instanceof Rollback ? err.cause : err;
      if (committing || attempted.length === 0) {
        // The COMMIT (its outcome unknown) or the BEGIN failed: answer as a lone transaction would.
        for (const m of members) if (!alone.has(m)) m.reject(cause);
        return { retry: [], deferred: [] };
      }
      if (attempted.length === 1) {
        attempted[0]!.reject(cause);
        return { retry: [], deferred };
      }
      // Someone's statement failed and the transaction is gone: re-run each caller alone.
      return { retry: attempted, deferred };
    }
    for (const r of riders) r.resolve();
    for (const { member, value } of ran) member.resolve(value);
    if (ran.length > 0)
      this.onBatch({ lane, callers: ran.length, rejected: alone.size, rows, events, durationMs: Date.now() - started, isolated });
    return { retry: [], deferred };
  }

  /** Run one member's work; a statement error outside a savepoint becomes a `Rollback` of the batch. */
  private async runMember(member: Member, tx: GroupTransaction, t: Transaction): Promise<unknown> {
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

  private groupTransaction(transaction: Transaction, queued: Queued, open: () => boolean): GroupTransaction {
    const check = (what: string) => {
      if (!open()) throw new Error(`tx.${what} was called after the work's promise settled; await it inside the work`);
    };
    return {
      transaction,
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
