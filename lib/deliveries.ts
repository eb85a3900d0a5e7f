/**
 * The delivery log and the dead-letter queue as library functions: list (filtered, cursor-paginated,
 * newest first), read one with its attempts, retry one, recover a window of dead deliveries, prune.
 */
import { QueryTypes } from 'sequelize';
import type { Database } from './db.js';
import { num } from './db.js';
import { isoOrNull } from './time.js';

/** Every status a delivery can have. */
export const DELIVERY_STATUSES = ['pending', 'inflight', 'succeeded', 'dead'] as const;
/** `pending` (due or waiting for a retry), `inflight` (leased to a dispatcher), `succeeded` or `dead`. */
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** One delivery of one event to one target (or webhook endpoint), as the delivery log lists it. */
export interface Delivery {
  id: number;
  event_id: string;
  event_type: string;
  deviceid: string | null;
  target: string;
  webhook_id: string | null;
  status: DeliveryStatus;
  attempts: number;
  max_attempts: number;
  next_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

/** One request of a delivery, as `getDelivery` returns it in `attempts_log`. */
export interface Attempt {
  number: number;
  started_at: string;
  duration_ms: number;
  status_code: number | null;
  outcome: string;
  spent: boolean;
  error: string | null;
  response_body: string | null;
}

/** Filters of `relay.listDeliveries` (all optional, combined with AND). */
export interface DeliveryFilter {
  status?: DeliveryStatus;
  target?: string;
  webhookId?: string;
  /** One event type, or any of several (a subscription pattern such as `metric.*`, expanded). */
  eventType?: string | readonly string[];
  deviceid?: string;
  /** Created at or after (ms). */
  since?: number;
  /** Created before (ms). */
  until?: number;
  limit?: number;
  /** Opaque cursor from a previous page. */
  cursor?: string;
}

function toDelivery(r: Record<string, unknown>): Delivery {
  return {
    id: num(r.id),
    event_id: String(r.event_id),
    event_type: String(r.event_type),
    deviceid: (r.deviceid as string | null) ?? null,
    target: String(r.target),
    webhook_id: (r.endpoint_id as string | null) ?? null,
    status: r.status as DeliveryStatus,
    attempts: num(r.attempts),
    max_attempts: num(r.max_attempts),
    next_attempt_at: r.status === 'pending' ? isoOrNull(r.next_attempt_at) : null,
    last_status_code: r.last_status_code === null ? null : num(r.last_status_code),
    last_error: (r.last_error as string | null) ?? null,
    created_at: isoOrNull(r.created_at)!,
    updated_at: isoOrNull(r.updated_at)!,
    finished_at: isoOrNull(r.finished_at),
  };
}

/** The opaque cursor of a page that ends at delivery `id`. */
export function encodeCursor(id: number): string {
  return Buffer.from(`d:${id}`).toString('base64url');
}

/** Returns the id encoded in a cursor, or null when the cursor is not one of ours. */
export function decodeCursor(cursor: string): number | null {
  const m = /^d:(\d{1,18})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return m ? Number(m[1]) : null;
}

/**
 * Newest first by id. The cursor is the last id of the page, so pages stay stable while new deliveries are
 * written (they get higher ids and never shift older pages).
 */
export async function listDeliveries(db: Database, f: DeliveryFilter = {}): Promise<{ data: Delivery[]; next_cursor: string | null }> {
  const where: string[] = [];
  const replacements: Record<string, unknown> = {};
  const add = (sql: string, key: string, value: unknown) => {
    if (value === undefined) return;
    where.push(sql);
    replacements[key] = value;
  };
  add('status = :status', 'status', f.status);
  add('target = :target', 'target', f.target);
  add('endpoint_id = :webhookId', 'webhookId', f.webhookId);
  add(Array.isArray(f.eventType) ? 'event_type IN (:eventType)' : 'event_type = :eventType', 'eventType', f.eventType);
  add('deviceid = :deviceid', 'deviceid', f.deviceid);
  add('created_at >= :since', 'since', f.since);
  add('created_at < :until', 'until', f.until);
  if (f.cursor !== undefined) {
    const id = decodeCursor(f.cursor);
    if (id === null) throw new RangeError('cursor is not valid');
    add('id < :cursorId', 'cursorId', id);
  }
  const limit = f.limit ?? 50;
  replacements.limit = limit + 1;
  const rows = await db.sequelize.query<Record<string, unknown>>(
    `SELECT * FROM relay_deliveries ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT :limit`,
    { replacements, type: QueryTypes.SELECT },
  );
  const page = rows.slice(0, limit).map(toDelivery);
  return { data: page, next_cursor: rows.length > limit ? encodeCursor(page[page.length - 1]!.id) : null };
}

export async function getDelivery(db: Database, id: number): Promise<(Delivery & { attempts_log: Attempt[]; event: unknown }) | null> {
  const [row] = await db.sequelize.query<Record<string, unknown>>('SELECT * FROM relay_deliveries WHERE id = :id', {
    replacements: { id },
    type: QueryTypes.SELECT,
  });
  if (!row) return null;
  const attempts = await db.sequelize.query<Record<string, unknown>>('SELECT * FROM relay_attempts WHERE delivery_id = :id ORDER BY id', {
    replacements: { id },
    type: QueryTypes.SELECT,
  });
  const [event] = await db.sequelize.query<Record<string, unknown>>('SELECT * FROM relay_events WHERE id = :id', {
    replacements: { id: row.event_id },
    type: QueryTypes.SELECT,
  });
  return {
    ...toDelivery(row),
    event: event
      ? { id: event.id, type: event.type, deviceid: event.deviceid, timestamp: event.timestamp, data: JSON.parse(String(event.data)) }
      : null,
    attempts_log: attempts.map((a) => ({
      number: num(a.number),
      started_at: isoOrNull(a.started_at)!,
      duration_ms: num(a.duration_ms),
      status_code: a.status_code === null ? null : num(a.status_code),
      outcome: String(a.outcome),
      spent: Boolean(a.spent),
      error: (a.error as string | null) ?? null,
      response_body: (a.response_body as string | null) ?? null,
    })),
  };
}

/** Attempts a re-queued delivery gets afresh, per target (the plugins' retry budgets). */
export type RetryBudgets = Record<string, number>;

/**
 * The SET clause of every re-queue: due now, and a fresh budget of attempts on top of those already made,
 * so attempt numbers in the log keep counting up (1, 2, 3, then 4, 5 after a retry) instead of restarting.
 */
function requeue(budgets: RetryBudgets, replacements: Record<string, unknown>): string {
  const entries = Object.entries(budgets);
  entries.forEach(([t, b], i) => {
    replacements[`bt${i}`] = t;
    replacements[`bb${i}`] = b;
  });
  const budget = entries.length
    ? `CASE target ${entries.map((_, i) => `WHEN :bt${i} THEN :bb${i}`).join(' ')} ELSE max_attempts END`
    : 'max_attempts';
  return `status = 'pending', max_attempts = attempts + ${budget}, next_attempt_at = :now, updated_at = :now,
          finished_at = NULL, lease_owner = NULL, lease_until = NULL`;
}

/**
 * Re-queue one delivery now with a fresh set of attempts. Refused (returns 'inflight') while a dispatcher
 * holds it; 'not_found' when there is no such delivery.
 */
export async function retryDelivery(
  db: Database,
  id: number,
  budgets: RetryBudgets = {},
  now = Date.now(),
): Promise<'requeued' | 'inflight' | 'not_found'> {
  const replacements: Record<string, unknown> = { id, now };
  const count = await db.sequelize.query(
    `UPDATE relay_deliveries SET ${requeue(budgets, replacements)} WHERE id = :id AND status <> 'inflight'`,
    {
      replacements,
      type: QueryTypes.BULKUPDATE,
    },
  );
  if (Number(count) > 0) return 'requeued';
  const [row] = await db.sequelize.query<{ status: string }>('SELECT status FROM relay_deliveries WHERE id = :id', {
    replacements: { id },
    type: QueryTypes.SELECT,
  });
  return row ? 'inflight' : 'not_found';
}

/** Re-queue every dead delivery created in `[since, until)`, optionally for one target or endpoint. */
export async function recoverDeadDeliveries(
  db: Database,
  w: { since: number; until?: number; target?: string; webhookId?: string },
  budgets: RetryBudgets = {},
  now = Date.now(),
): Promise<number> {
  const where = ["status = 'dead'", 'created_at >= :since'];
  if (w.until !== undefined) where.push('created_at < :until');
  if (w.target !== undefined) where.push('target = :target');
  if (w.webhookId !== undefined) where.push('endpoint_id = :webhookId');
  const replacements: Record<string, unknown> = { ...w, now };
  const count = await db.sequelize.query(`UPDATE relay_deliveries SET ${requeue(budgets, replacements)} WHERE ${where.join(' AND ')}`, {
    replacements,
    type: QueryTypes.BULKUPDATE,
  });
  return Number(count ?? 0);
}

/**
 * After a target recovers, re-queue the deliveries that died of the outage: dead with a retryable cause
 * (no response, 408, 429, 5xx) for this circuit key, finished since `since`. Permanent refusals stay dead.
 */
export async function redriveDead(
  db: Database,
  circuitKey: string,
  since: number,
  budgets: RetryBudgets = {},
  now = Date.now(),
): Promise<number> {
  const replacements: Record<string, unknown> = { circuitKey, since, now };
  const count = await db.sequelize.query(
    `UPDATE relay_deliveries SET ${requeue(budgets, replacements)}
      WHERE status = 'dead' AND circuit_key = :circuitKey AND finished_at >= :since
        AND (last_status_code IS NULL OR last_status_code >= 500 OR last_status_code IN (408, 429))`,
    { replacements, type: QueryTypes.BULKUPDATE },
  );
  return Number(count ?? 0);
}

/** Delete finished deliveries (and their attempts and orphaned events) older than the retention window. */
export async function pruneDeliveries(db: Database, retentionDays: number, now = Date.now()): Promise<number> {
  const before = now - retentionDays * 86_400_000;
  return db.transaction(async (transaction) => {
    const old = "SELECT id FROM relay_deliveries WHERE status IN ('succeeded', 'dead') AND finished_at < :before";
    await db.sequelize.query(`DELETE FROM relay_attempts WHERE delivery_id IN (${old})`, { replacements: { before }, transaction });
    const count = await db.sequelize.query(`DELETE FROM relay_deliveries WHERE status IN ('succeeded', 'dead') AND finished_at < :before`, {
      replacements: { before },
      transaction,
      type: QueryTypes.BULKDELETE,
    });
    await db.sequelize.query(
      'DELETE FROM relay_events WHERE created_at < :before AND NOT EXISTS (SELECT 1 FROM relay_deliveries d WHERE d.event_id = relay_events.id)',
      { replacements: { before }, transaction },
    );
    return Number(count ?? 0);
  });
}

export async function countByStatus(db: Database): Promise<Array<{ target: string; status: string; n: number }>> {
  const rows = await db.sequelize.query<{ target: string; status: string; n: unknown }>(
    // One arm per status, so that each reads its own partial index rather than the whole delivery log.
    ['pending', 'inflight', 'dead']
      .map((s) => `SELECT target, status, COUNT(*) AS n FROM relay_deliveries WHERE status = '${s}' GROUP BY target, status`)
      .join(' UNION ALL '),
    { type: QueryTypes.SELECT },
  );
  return rows.map((r) => ({ target: r.target, status: r.status, n: num(r.n) }));
}
