/**
 * Claim due deliveries as a lease, in one statement.
 *
 * Shape: the innermost SELECT takes the oldest due rows; a window function then caps how many rows one
 * circuit key (a target or one webhook endpoint) may take, so a backlog for a slow endpoint cannot fill the
 * batch and then sit in memory past its lease; on PostgreSQL the survivors are locked with `FOR UPDATE SKIP
 * LOCKED` (several dispatchers never claim the same row and never wait on each other); the UPDATE flips them
 * to `inflight` with a lease that is longer than a request can take. Keys whose circuit is open or whose
 * concurrency is used up are excluded up front. The event each row carries is read in the same statement (a
 * join on PostgreSQL, subqueries in `RETURNING` on SQLite). On PostgreSQL the statement runs in a
 * transaction of its own that sets how it is planned (`PG_CLAIM_PLANNER`): three round trips.
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

/**
 * The claim must read the due index in order and stop after `limit` live rows. Without statistics (a new
 * table, or autovacuum off or behind) PostgreSQL takes the due rows for a handful, and plans a bitmap scan of
 * every due index entry, dead ones included, then a sort: 5-30 ms per claim with a webhook backlog of
 * 20,000, against 1 ms. Bitmap scans also never mark dead index entries, so the next claim reads them again.
 */
const PG_CLAIM_PLANNER = { enable_bitmapscan: 'off', enable_seqscan: 'off' };

export async function claimDeliveries(sequelize: Sequelize, o: ClaimOptions, transaction?: Transaction): Promise<ClaimedRow[]> {
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
  const [bind, p] = binder();
  const now = p(o.now);
  const leaseUntil = p(o.now + o.leaseMs);
  const owner = p(o.owner);
  if (o.dialect === 'postgres') {
    // One text whatever the targets, keys and caps (lists travel as arrays); not prepared by name, so it is
    // planned for its values each time (see `runSql`). Each step is shaped so that no estimate can make it
    // expensive: PostgreSQL has no useful statistics for a queue table whose rows change state all the
    // time (a fresh one reads as one row), and joins planned on such estimates re-ran the window function,
    // or scanned every pending row, for each row joined (6-20 ms per claim at 600 records/s, against 3 ms):
    // - `due` reads the oldest due rows once (a materialised CTE; as a subquery the planner may re-run it
    //   and update more rows than the limit), without locking them;
    // - `ranked` caps them per key, once;
    // - `locked` locks only the rows kept (`FOR UPDATE SKIP LOCKED`: another dispatcher's claim skips them,
    //   and a row another claim took meanwhile comes back with its new status). Locking in `due` wrote a
    //   lock for each of up to 100 rows to keep the few a busy key had room for. It finds the rows by
    //   primary key only: with `status = 'pending'` in its WHERE, the planner took the partial due index and
    //   read all of it (26 ms with 20,000 due);
    // - the UPDATE takes the locked rows still pending, by primary key (`= ANY(ARRAY(...))` is an index
    //   condition);
    // - the events are joined to the few claimed rows (a LEFT JOIN: a row whose event is gone is still
    //   claimed, and the dispatcher dead-letters it rather than meeting it in every claim).
    const held = Object.entries(o.heldKeyRoom ?? {});
    const caps = Object.entries(o.perKeyCap);
    const only = o.onlyKey === undefined ? '' : ` AND circuit_key = ${p(o.onlyKey)}`;
    const sql = `WITH due AS MATERIALIZED (
        SELECT id, target, circuit_key, next_attempt_at FROM relay_deliveries
         WHERE status = 'pending' AND next_attempt_at <= ${now} AND target = ANY(${p(o.targets)}::text[])
           AND NOT (circuit_key = ANY(${p(o.excludeKeys)}::text[]))${only}
         ORDER BY next_attempt_at, id
         LIMIT ${p(o.limit)}),
      ranked AS MATERIALIZED (
        SELECT id FROM (
          SELECT id, target, circuit_key,
                 ROW_NUMBER() OVER (PARTITION BY circuit_key ORDER BY next_attempt_at, id) AS rn FROM due) w
         WHERE rn <= COALESCE(
           (SELECT h.room FROM unnest(${p(held.map(([k]) => k))}::text[], ${p(held.map(([, n]) => n))}::int[]) AS h(key, room) WHERE h.key = w.circuit_key),
           (SELECT c.cap FROM unnest(${p(caps.map(([t]) => t))}::text[], ${p(caps.map(([, n]) => n))}::int[]) AS c(target, cap) WHERE c.target = w.target),
           ${p(o.defaultPerKeyCap)}::int)),
      locked AS MATERIALIZED (
        SELECT id, status FROM relay_deliveries WHERE id = ANY(ARRAY(SELECT id FROM ranked)) FOR UPDATE SKIP LOCKED),
      claimed AS (
        UPDATE relay_deliveries
           SET status = 'inflight', lease_until = ${leaseUntil}, lease_owner = ${owner}, updated_at = ${now}
         WHERE id = ANY(ARRAY(SELECT id FROM locked WHERE status = 'pending'))
        RETURNING ${columns.join(', ')})
      SELECT ${columns.map((c) => `d.${c}`).join(', ')}, ${eventColumns.map((c) => `e.${c} AS event_${c}`).join(', ')}
        FROM claimed d LEFT JOIN relay_events e ON e.id = d.event_id`;
    return shaped(await runSql<ClaimedRow>(sequelize, sql, bind, transaction, { planner: PG_CLAIM_PLANNER }));
  }
  // An empty list reads `IN (NULL)`, as sequelize wrote it: nothing matches.
  const list = (values: unknown[]) => (values.length ? values.map(p).join(', ') : 'NULL');
  let filter = ` AND target IN (${list(o.targets)})`;
  if (o.excludeKeys.length > 0) filter += ` AND circuit_key NOT IN (${list(o.excludeKeys)})`;
  if (o.onlyKey !== undefined) filter += ` AND circuit_key = ${p(o.onlyKey)}`;
  const limit = p(o.limit);
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
  // Without statistics SQLite picks the (status, id) index, reads every pending row and sorts them: 10 ms
  // per claim with 50,000 pending, growing with the backlog. The partial due index reads only the first rows
  // in order (1 ms, flat).
  const due = `
    SELECT id, event_id, target, circuit_key, next_attempt_at FROM relay_deliveries INDEXED BY relay_deliveries_due
     WHERE status = 'pending' AND next_attempt_at <= ${now}${filter}
     ORDER BY next_attempt_at, id
     LIMIT ${limit}`;
  const ranked = `SELECT id, event_id, ROW_NUMBER() OVER (PARTITION BY circuit_key ORDER BY next_attempt_at, id) AS rn, target, circuit_key FROM due`;
  const sql = `WITH due AS (${due}), ranked AS (${ranked})
         UPDATE relay_deliveries
            SET status = 'inflight', lease_until = ${leaseUntil}, lease_owner = ${owner}, updated_at = ${now}
          WHERE id IN (SELECT id FROM ranked WHERE rn <= ${capExpr}) AND status = 'pending'
         RETURNING ${columns.join(', ')},
           ${eventColumns.map((c) => `(SELECT e.${c} FROM relay_events e WHERE e.id = relay_deliveries.event_id) AS event_${c}`).join(',\n           ')}`;
  return shaped(await runSql<ClaimedRow>(sequelize, sql, bind, transaction));
}

/** Numbers as numbers, oldest first. */
function shaped(rows: ClaimedRow[]): ClaimedRow[] {
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
