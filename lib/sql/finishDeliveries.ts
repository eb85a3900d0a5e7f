/**
 * Record the outcome of a batch of sends in one transaction: every attempt row in one INSERT, then one
 * UPDATE per distinct outcome (succeeded rows share one; a failed batch request shares one), so a flush of
 * a hundred results is a handful of statements, not a hundred.
 */
import { QueryTypes } from 'sequelize';
import type { Sequelize, Transaction } from 'sequelize';
import { insertRows } from './insertRows.js';

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

export async function finishDeliveries(
  sequelize: Sequelize,
  transaction: Transaction,
  attempts: AttemptRecord[],
  updates: StatusUpdate[],
  owner: string,
  now: number,
): Promise<void> {
  await insertRows(
    sequelize,
    'relay_attempts',
    ['delivery_id', 'number', 'started_at', 'duration_ms', 'status_code', 'outcome', 'spent', 'error', 'response_body'],
    attempts.map((a) => [a.deliveryId, a.number, a.startedAt, a.durationMs, a.statusCode, a.outcome, a.spent, a.error, a.responseBody]),
    transaction,
  );
  for (const u of updates) {
    if (u.ids.length === 0) continue;
    const done = u.status !== 'pending';
    // A success is recorded even if our lease expired meanwhile (the receiver has it); a failure only while
    // the row is still ours, so a late failure never overwrites another dispatcher's work.
    const guard = u.status === 'succeeded' ? "status IN ('inflight', 'pending')" : "status = 'inflight' AND lease_owner = :owner";
    await sequelize.query(
      `UPDATE relay_deliveries
          SET status = :status, attempts = attempts + :spent, next_attempt_at = COALESCE(:nextAt, next_attempt_at),
              last_status_code = :code, last_error = :error, lease_until = NULL, lease_owner = NULL,
              updated_at = :now, finished_at = ${done ? ':now' : 'NULL'}
        WHERE id IN (:ids) AND ${guard}`,
      {
        replacements: {
          status: u.status,
          spent: u.spent,
          nextAt: u.nextAttemptAt,
          code: u.statusCode,
          error: u.error,
          now,
          ids: u.ids,
          owner,
        },
        transaction,
        type: QueryTypes.UPDATE,
      },
    );
  }
}
