/**
 * Attempt rows and status updates waiting to be written, and the writes. Results are written at most once
 * per `flushIntervalMs`: under a stream of single-event requests (one webhook endpoint) each completion
 * arrives on its own, and writing each in its own round trip cost as much as the request. The leases keep
 * the rows ours until then. A failed write keeps the results and tries again (the leases still protect them).
 */
import type { Transaction } from 'sequelize';
import type { Database } from '../db.js';
import { finishDeliveries } from '../sql/finishDeliveries.js';
import type { AttemptRecord, StatusUpdate } from '../sql/finishDeliveries.js';

export interface ResultBufferOptions {
  db: Database;
  workerId: string;
  flushIntervalMs: number;
  /** Pause before a failed write is tried again (at most 1 s). */
  pollIntervalMs: number;
  /** Whether a retry of a failed write is still wanted (the dispatcher runs or is stopping). */
  active(): boolean;
  report(err: unknown, during: string): void;
  /**
   * A transaction that is committing anyway to write a flush in, or null for one of its own (the default).
   * The relay passes its group commit's `ride`: on SQLite always, so a flush is written in the ingest batch
   * instead of queueing one more transaction for the one writer; on PostgreSQL while a lane is busy, where
   * the flush's statement (`parts`) joins the batch's one statement and costs no round trip of its own.
   */
  transaction?: (fn: (t: Transaction) => Promise<void>, parts?: (p: (value: unknown) => string) => string[]) => Promise<void> | null;
}

export class ResultBuffer {
  private attempts: AttemptRecord[] = [];
  private updates: StatusUpdate[] = [];
  private flushing: Promise<void> | null = null;
  private flushScheduled = false;
  private closed = false;

  constructor(private readonly o: ResultBufferOptions) {}

  /** Buffer results and make sure a flush follows within `flushIntervalMs`. */
  add(attempts: AttemptRecord[], updates: StatusUpdate[]): void {
    this.attempts.push(...attempts);
    this.updates.push(...updates);
    this.scheduleFlush();
  }

  get pending(): number {
    return this.attempts.length + this.updates.length;
  }

  scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setTimeout(() => {
      this.flushScheduled = false;
      void this.flush();
    }, this.o.flushIntervalMs);
  }

  /**
   * Write everything buffered, including what another flush is writing right now: resolves when the buffer
   * is empty and no write is in flight, or when a write failed and the dispatcher no longer wants retries.
   * (Two flushes used to race: the second could resolve while the first was still writing, so `stop()`
   * returned and the database closed under a write.)
   */
  async flush(): Promise<void> {
    while (this.flushing || this.pending > 0) {
      if (!this.flushing) {
        if (this.closed) return;
        this.write();
      }
      await this.flushing;
      if (this.pending > 0 && !this.o.active()) return;
    }
  }

  /** After the dispatcher's last flush: nothing more is written (the database may be closing). */
  close(): void {
    this.closed = true;
  }

  private write(): void {
    const attempts = this.attempts;
    const updates = this.updates;
    this.attempts = [];
    this.updates = [];
    const { db, workerId } = this.o;
    const ride = this.o.transaction;
    const transaction = (fn: (t: Transaction) => Promise<void>) => ride?.(fn) ?? db.transaction(fn);
    this.flushing = finishDeliveries(db.sequelize, db.dialect, attempts, updates, workerId, Date.now(), transaction, ride)
      .catch(async (err) => {
        this.o.report(err, 'flush');
        this.attempts = attempts.concat(this.attempts);
        this.updates = updates.concat(this.updates);
        await new Promise((r) => setTimeout(r, Math.min(this.o.pollIntervalMs, 1000)));
      })
      .finally(() => {
        this.flushing = null;
      });
  }
}
