/**
 * Claim due deliveries as a lease, in one statement.
 *
 * Shape: the innermost SELECT takes the oldest due rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, so several
 * dispatchers never claim the same row and never wait on each other); a window function then caps how many
 * rows one circuit key (a target or one webhook endpoint) may take, so a backlog for a slow endpoint cannot
 * fill the batch and then sit in memory past its lease; the UPDATE flips the survivors to `inflight` with a
 * lease that is longer than a request can take. Keys whose circuit is open or whose concurrency is used up
 * are excluded up front. The event each row carries is read in the same statement (a join on PostgreSQL,
 * subqueries in `RETURNING` on SQLite), so a claim is one round trip.
 */
import type { Sequelize, Transaction } from 'sequelize';
import type { Dialect } from '../db.js';
import { binder, runSql } from './driver.js';

export interface ClaimedRow {
  id: number;
  event_id: string;
  event_type: string;
  deviceid: string | null;
  target: string;
  endpoint_id: string | null;
  circuit_key: string;
  attempts: number;
  max_attempts: number;
  next_attempt_at: number;
  /** The event's own columns, read in the same statement; null when the event row is gone (pruned). */
  event_timestamp: string | null;
  event_data: string | null;
  event_request_id: string | null;
}

export interface ClaimOptions {
  dialect: Dialect;
  owner: string;
  now: number;
  leaseMs: number;
  limit: number;
  /** Per-target cap of rows per circuit key in one claim. */
  perKeyCap: Record<string, number>;
  defaultPerKeyCap: number;
  /** Room left for keys this dispatcher already holds rows of (overrides the per-target cap). */
  heldKeyRoom?: Record<string, number>;
  excludeKeys: string[];
  /** Targets this dispatcher has plugins for. */
  targets: string[];
  /** Claim only this key (a circuit probe). */
  onlyKey?: string;
}

export async function claimDeliveries(sequelize: Sequelize, o: ClaimOptions, transaction?: Transaction): Promise<ClaimedRow[]> {
  const [bind, p] = binder();
  const now = p(o.now);
  const leaseUntil = p(o.now + o.leaseMs);
  const owner = p(o.owner);
  // An empty list reads `IN (NULL)`, as sequelize wrote it: nothing matches.
  const list = (values: unknown[]) => (values.length ? values.map(p).join(', ') : 'NULL');
  let filter = ` AND target IN (${list(o.targets)})`;
  if (o.excludeKeys.length > 0) filter += ` AND circuit_key NOT IN (${list(o.excludeKeys)})`;
  if (o.onlyKey !== undefined) filter += ` AND circuit_key = ${p(o.onlyKey)}`;
  const limit = p(o.limit);
  // A cap is compared with ROW_NUMBER(); untyped, PostgreSQL would read a CASE of parameters as text.
  const cap = (n: number) => `CAST(${p(n)} AS integer)`;
  const caps = Object.entries(o.perKeyCap);
  const defaultCap = cap(o.defaultPerKeyCap);
  const targetCap = caps.length
    ? `CASE target ${caps.map(([t, c]) => `WHEN ${p(t)} THEN ${cap(c)}`).join(' ')} ELSE ${defaultCap} END`
    : defaultCap;
  const held = Object.entries(o.heldKeyRoom ?? {});
  const capExpr = held.length
    ? `CASE circuit_key ${held.map(([k, room]) => `WHEN ${p(k)} THEN ${cap(room)}`).join(' ')} ELSE ${targetCap} END`
    : targetCap;
  const lock = o.dialect === 'postgres' ? 'FOR UPDATE SKIP LOCKED' : '';
  // Without statistics SQLite picks the (status, id) index, reads every pending row and sorts them: 10 ms
  // per claim with 50,000 pending, growing with the backlog. The partial due index reads only the first rows
  // in order (1 ms, flat).
  const index = o.dialect === 'sqlite' ? ' INDEXED BY relay_deliveries_due' : '';
  const due = `
    SELECT id, event_id, target, circuit_key, next_attempt_at FROM relay_deliveries${index}
     WHERE status = 'pending' AND next_attempt_at <= ${now}${filter}
     ORDER BY next_attempt_at, id
     LIMIT ${limit} ${lock}`;
  const ranked = `SELECT id, event_id, ROW_NUMBER() OVER (PARTITION BY circuit_key ORDER BY next_attempt_at, id) AS rn, target, circuit_key FROM due`;
  const columns = [
    'id',
    'event_id',
    'event_type',
    'deviceid',
    'target',
    'endpoint_id',
    'circuit_key',
    'attempts',
    'max_attempts',
    'next_attempt_at',
  ];
  const eventColumns = ['timestamp', 'data', 'request_id'];
  // PostgreSQL: the locked rows are read once into a materialised CTE and joined. Written as
  // `WHERE id IN (subquery ... LIMIT ... FOR UPDATE SKIP LOCKED)` the planner may re-run the subquery and
  // update more rows than the limit (and more than a key's cap). The event is a LEFT JOIN: a row whose event
  // is gone is still claimed, and the dispatcher dead-letters it rather than meeting it in every claim.
  const sql =
    o.dialect === 'postgres'
      ? `WITH due AS MATERIALIZED (${due}), ranked AS (${ranked})
         UPDATE relay_deliveries d
            SET status = 'inflight', lease_until = ${leaseUntil}, lease_owner = ${owner}, updated_at = ${now}
           FROM ranked r LEFT JOIN relay_events e ON e.id = r.event_id
          WHERE d.id = r.id AND r.rn <= ${capExpr.replace(/\b(target|circuit_key)\b/g, 'r.$1')} AND d.status = 'pending'
         RETURNING ${columns.map((c) => `d.${c}`).join(', ')}, ${eventColumns.map((c) => `e.${c} AS event_${c}`).join(', ')}`
      : `WITH due AS (${due}), ranked AS (${ranked})
         UPDATE relay_deliveries
            SET status = 'inflight', lease_until = ${leaseUntil}, lease_owner = ${owner}, updated_at = ${now}
          WHERE id IN (SELECT id FROM ranked WHERE rn <= ${capExpr}) AND status = 'pending'
         RETURNING ${columns.join(', ')},
           ${eventColumns.map((c) => `(SELECT e.${c} FROM relay_events e WHERE e.id = relay_deliveries.event_id) AS event_${c}`).join(',\n           ')}`;
  const rows = await runSql<ClaimedRow>(sequelize, sql, bind, transaction);
  return rows
    .map((r) => ({
      ...r,
      id: Number(r.id),
      attempts: Number(r.attempts),
      max_attempts: Number(r.max_attempts),
      next_attempt_at: Number(r.next_attempt_at),
    }))
    .sort((a, b) => a.next_attempt_at - b.next_attempt_at || a.id - b.id);
}
