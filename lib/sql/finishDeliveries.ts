/**
 * Record the outcome of a burst of sends: every attempt row in one INSERT, then one UPDATE per distinct
 * outcome. Updates that set the same values are merged first (every success of a burst shares one UPDATE,
 * whichever request it came from), so a flush of a hundred results is a handful of statements, not a hundred.
 *
 * PostgreSQL runs the whole write as one statement (data-modifying CTEs, atomic on their own): one round
 * trip instead of BEGIN, INSERT, UPDATE..., COMMIT. SQLite runs the statements in the caller's transaction;
 * they do not cross a socket there.
 */
import type { Sequelize, Transaction } from 'sequelize';
import type { Dialect } from '../db.js';
import { binder, runSql } from './driver.js';
import { insertRows, pgInsert } from './insertRows.js';

export interface AttemptRecord {
  deliveryId: number;
  number: number;
  startedAt: number;
  durationMs: number;
  statusCode: number | null;
  outcome: 'success' | 'retry' | 'permanent' | 'released';
  spent: boolean;
  error: string | null;
  responseBody: string | null;
}

export interface StatusUpdate {
  ids: number[];
  status: 'succeeded' | 'pending' | 'dead';
  /** Attempts to add to the counter (0 for a circuit probe that failed). */
  spent: number;
  nextAttemptAt: number | null;
  statusCode: number | null;
  error: string | null;
}

const ATTEMPT_COLUMNS = [
  'delivery_id',
  'number',
  'started_at',
  'duration_ms',
  'status_code',
  'outcome',
  'spent',
  'error',
  'response_body',
] as const;
/** Above this many attempt rows the flush is written in a transaction of chunked statements instead. */
const PG_ONE_STATEMENT_MAX = 2_000;

/** Updates with identical values, merged into one id list each (order of first appearance kept). */
export function mergeUpdates(updates: StatusUpdate[]): StatusUpdate[] {
  const merged = new Map<string, StatusUpdate>();
  for (const u of updates) {
    if (u.ids.length === 0) continue;
    const sig = JSON.stringify([u.status, u.spent, u.nextAttemptAt, u.statusCode, u.error]);
    const m = merged.get(sig);
    if (m) m.ids.push(...u.ids);
    else merged.set(sig, { ...u, ids: [...u.ids] });
  }
  return [...merged.values()];
}

function attemptValues(a: AttemptRecord): unknown[] {
  return [a.deliveryId, a.number, a.startedAt, a.durationMs, a.statusCode, a.outcome, a.spent, a.error, a.responseBody];
}

/**
 * One UPDATE. A success is recorded even if our lease expired meanwhile (the receiver has it); a failure only
 * while the row is still ours, so a late failure never overwrites another dispatcher's work.
 */
function updateSql(u: StatusUpdate, p: (value: unknown) => string, owner: string, now: number, dialect: Dialect): string {
  const done = u.status !== 'pending';
  const guard = u.status === 'succeeded' ? "status IN ('inflight', 'pending')" : `status = 'inflight' AND lease_owner = ${p(owner)}`;
  const nextAt = u.nextAttemptAt === null ? 'next_attempt_at' : p(u.nextAttemptAt);
  // The ids as one parameter (a JSON array on SQLite, an array on PostgreSQL), so the statement's text, kept
  // prepared (see `runSql`), does not change with their number.
  const ids = dialect === 'sqlite' ? `IN (SELECT value FROM json_each(${p(JSON.stringify(u.ids))}))` : `= ANY(${p(u.ids)}::bigint[])`;
  return `UPDATE relay_deliveries
     SET status = ${p(u.status)}, attempts = attempts + ${p(u.spent)}, next_attempt_at = ${nextAt},
         last_status_code = ${p(u.statusCode)}, last_error = ${p(u.error)}, lease_until = NULL, lease_owner = NULL,
         updated_at = ${p(now)}, finished_at = ${done ? p(now) : 'NULL'}
   WHERE id ${ids} AND ${guard}`;
}

export async function finishDeliveries(
  sequelize: Sequelize,
  dialect: Dialect,
  attempts: AttemptRecord[],
  updates: StatusUpdate[],
  owner: string,
  now: number,
  transaction: (fn: (t: Transaction) => Promise<void>) => Promise<void>,
  /**
   * PostgreSQL's one statement: a batch that is committing anyway to write it in (the group commit's busy
   * lane, as `fn` in its transaction or as `parts` of its one statement), or null to run it on its own.
   */
  ride?: (fn: (t: Transaction) => Promise<void>, parts: (p: (value: unknown) => string) => string[]) => Promise<void> | null,
): Promise<void> {
  const merged = mergeUpdates(updates);
  if (dialect === 'postgres' && attempts.length <= PG_ONE_STATEMENT_MAX) {
    const parts = (p: (value: unknown) => string): string[] => {
      const out: string[] = [];
      if (attempts.length > 0) out.push(pgInsert('relay_attempts', ATTEMPT_COLUMNS, attempts.map(attemptValues), p));
      for (const u of merged) out.push(updateSql(u, p, owner, now, dialect));
      return out;
    };
    if (attempts.length === 0 && merged.length === 0) return;
    const run = (t: Transaction | undefined) => {
      const [bind, p] = binder();
      const all = parts(p);
      const sql = all.length === 1 ? all[0]! : `WITH ${all.map((s, i) => `w${i} AS (${s})`).join(', ')} SELECT 1`;
      return runSql(sequelize, sql, bind, t);
    };
    const rode = ride?.(async (t) => void (await run(t)), parts);
    if (rode) await rode;
    else await run(undefined);
    return;
  }
  await transaction(async (t) => {
    await insertRows(sequelize, 'relay_attempts', ATTEMPT_COLUMNS, attempts.map(attemptValues), t);
    for (const u of merged) {
      const [bind, p] = binder();
      await runSql(sequelize, updateSql(u, p, owner, now, dialect), bind, t);
    }
  });
}
