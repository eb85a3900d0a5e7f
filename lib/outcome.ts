/**
 * What one request's result means for each delivery it carried: succeeded, rescheduled, released (no
 * attempt spent) or dead. Pure, so the rules are tested without a network; the dispatcher writes the
 * returned updates and attempt rows.
 */
import { nextDelayMs } from './retry.js';
import type { RetryPolicy } from './retry.js';
import type { AttemptRecord, StatusUpdate } from './sql/finishDeliveries.js';
import type { Verdict } from './target.js';

export interface SentRow {
  id: number;
  attempts: number;
  max_attempts: number;
}

export interface RequestResult {
  verdict: Verdict;
  /** Hand the rows back without spending an attempt (failed circuit probe, our own shutdown). */
  released: boolean;
  statusCode: number | null;
  error: string | null;
  responseBody: string | null;
  retryAfterMs: number | null;
  startedAt: number;
  durationMs: number;
}

export interface Plan<R extends SentRow> {
  updates: StatusUpdate[];
  attempts: AttemptRecord[];
  dead: R[];
  retrying: R[];
  /** Earliest rescheduled attempt, to wake the dispatcher then. */
  nextRetryAt: number | null;
}

export function planOutcomes<R extends SentRow>(
  rows: R[],
  r: RequestResult,
  policy: RetryPolicy,
  now = Date.now(),
  random = Math.random,
): Plan<R> {
  const plan: Plan<R> = { updates: [], attempts: [], dead: [], retrying: [], nextRetryAt: null };
  const byOutcome = new Map<string, StatusUpdate>();
  // Rows of one request that are on the same attempt share one delay, so a failed batch is one UPDATE.
  const delays = new Map<number, number>();
  // A success or a release is the same outcome for every row: one update, built once (the hot path).
  const uniform: StatusUpdate | null =
    r.verdict === 'success'
      ? { status: 'succeeded', spent: 1, nextAttemptAt: null, statusCode: r.statusCode, error: null, ids: [] }
      : r.released
        ? { status: 'pending', spent: 0, nextAttemptAt: now, statusCode: r.statusCode, error: r.error, ids: [] }
        : null;
  if (uniform && rows.length > 0) plan.updates.push(uniform);
  for (const row of rows) {
    const attemptsMade = row.attempts + (r.released ? 0 : 1);
    let u: Omit<StatusUpdate, 'ids'>;
    let outcome: AttemptRecord['outcome'];
    if (uniform) {
      uniform.ids.push(row.id);
      plan.attempts.push(attemptOf(row, r, uniform.status === 'succeeded' ? 'success' : 'released'));
      continue;
    }
    if (r.verdict === 'permanent' || attemptsMade >= row.max_attempts) {
      u = { status: 'dead', spent: 1, nextAttemptAt: null, statusCode: r.statusCode, error: r.error };
      outcome = r.verdict === 'permanent' ? 'permanent' : 'retry';
      plan.dead.push(row);
    } else {
      let delay = delays.get(attemptsMade);
      if (delay === undefined) {
        delay = nextDelayMs(policy, attemptsMade, r.retryAfterMs, random);
        delays.set(attemptsMade, delay);
      }
      u = { status: 'pending', spent: 1, nextAttemptAt: now + delay, statusCode: r.statusCode, error: r.error };
      outcome = 'retry';
      plan.retrying.push(row);
      plan.nextRetryAt = Math.min(plan.nextRetryAt ?? Infinity, now + delay);
    }
    const sig = `${u.status}|${u.spent}|${u.nextAttemptAt}`;
    const existing = byOutcome.get(sig);
    if (existing) existing.ids.push(row.id);
    else byOutcome.set(sig, { ...u, ids: [row.id] });
    plan.attempts.push(attemptOf(row, r, outcome));
  }
  if (!uniform) plan.updates = [...byOutcome.values()];
  return plan;
}

function attemptOf(row: SentRow, r: RequestResult, outcome: AttemptRecord['outcome']): AttemptRecord {
  return {
    deliveryId: row.id,
    number: row.attempts + 1,
    startedAt: r.startedAt,
    durationMs: r.durationMs,
    statusCode: r.statusCode,
    outcome,
    spent: !r.released,
    error: r.error,
    responseBody: r.responseBody,
  };
}
