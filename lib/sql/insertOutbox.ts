/**
 * Write events and their delivery rows in the caller's transaction, whatever the number of events, with no
 * model instantiation. PostgreSQL: one statement (the events INSERT as a CTE of the deliveries INSERT), so
 * publishing costs an ingest one round trip. SQLite: two multi-row INSERTs (`insertRows`), in-process.
 * A delivery may be written already leased to the publishing process's dispatcher (see `Relay.publish`);
 * the ids of those rows are returned.
 */
import type { Sequelize, Transaction } from 'sequelize';
import type { RelayEvent } from '../events.js';
import { binder, runSql } from './driver.js';
import { insertIgnore, insertRows, pgInsert } from './insertRows.js';

const EVENT_COLUMNS = ['id', 'type', 'deviceid', 'timestamp', 'data', 'request_id', 'created_at'];
const DELIVERY_COLUMNS = [
  'event_id',
  'event_type',
  'deviceid',
  'target',
  'endpoint_id',
  'circuit_key',
  'status',
  'attempts',
  'max_attempts',
  'next_attempt_at',
  'lease_until',
  'lease_owner',
  'created_at',
  'updated_at',
];
/** Above this many values (rows x columns) an outbox write on PostgreSQL is not one statement: its rows go in chunked INSERTs. */
export const PG_ONE_STATEMENT_PARAMS = 30_000;

export interface NewDelivery {
  event: RelayEvent;
  target: string;
  endpointId: string | null;
  circuitKey: string;
  maxAttempts: number;
  nextAttemptAt: number;
  /** Written already leased to this dispatcher (`inflight`), to be sent from memory after commit. */
  lease?: { owner: string; until: number };
}

/** The id of each leased delivery, by `${event id} ${circuit key}` (unique per delivery). */
export type LeasedIds = Map<string, number>;

export interface OutboxWritten {
  leased: LeasedIds;
  /** Each event's data as stored (JSON), by event id. */
  stored: Map<string, string>;
}

/** A delivery row as `RETURNING id, event_id, circuit_key, status` reads it. */
export interface ReturnedDelivery {
  id: unknown;
  event_id: string;
  circuit_key: string;
  status: string;
}

/** One `relay_deliveries` row, in `DELIVERY_COLUMNS` order. */
function deliveryRow(d: NewDelivery, now: number): unknown[] {
  return [
    d.event.id,
    d.event.type,
    d.event.deviceid,
    d.target,
    d.endpointId,
    d.circuitKey,
    d.lease ? 'inflight' : 'pending',
    0,
    d.maxAttempts,
    d.nextAttemptAt,
    d.lease?.until ?? null,
    d.lease?.owner ?? null,
    now,
    now,
  ];
}

/** Delivery rows for events stored already (webhook replay): one multi-row INSERT in the caller's transaction. */
export async function insertDeliveries(
  sequelize: Sequelize,
  deliveries: NewDelivery[],
  transaction: Transaction | undefined,
  now = Date.now(),
): Promise<void> {
  await insertRows(
    sequelize,
    'relay_deliveries',
    DELIVERY_COLUMNS,
    deliveries.map((d) => deliveryRow(d, now)),
    transaction,
  );
}

export const deliveryKey = (eventId: string, circuitKey: string): string => `${eventId} ${circuitKey}`;

/**
 * The outbox write on PostgreSQL as two INSERT statements over one `bind` array, for a caller to run as one
 * statement: `insertOutbox` below (the events INSERT as a CTE of the deliveries INSERT), and the group
 * commit's one-statement batches (lib/groupCommit.ts), which add the batch's own INSERTs beside them.
 * `deliveries` is null when there are no delivery rows; its RETURNING columns are `LEASED_COLUMNS` when a
 * row was written leased (read them back with {@link keepLeased}).
 */
export function pgOutboxStatements(
  events: RelayEvent[],
  deliveries: NewDelivery[],
  bind: unknown[],
  now: number,
  options: { ignoreExisting?: boolean } = {},
): { events: string; deliveries: string | null; returning: boolean; stored: Map<string, string> } {
  const stored = new Map<string, string>();
  const [, p] = binder(bind);
  const eventRows = eventRowsOf(events, stored, now);
  const ignore = options.ignoreExisting ? ' ON CONFLICT (id) DO NOTHING' : '';
  const returning = deliveries.some((d) => d.lease);
  const eventsSql = `${pgInsert('relay_events', EVENT_COLUMNS, eventRows, p)}${ignore}`;
  const deliveriesSql =
    deliveries.length === 0
      ? null
      : `${pgInsert(
          'relay_deliveries',
          DELIVERY_COLUMNS,
          deliveries.map((d) => deliveryRow(d, now)),
          p,
        )}${returning ? ` RETURNING ${LEASED_COLUMNS}` : ''}`;
  return { events: eventsSql, deliveries: deliveriesSql, returning, stored };
}

/** How many bind values the outbox write of these events and deliveries takes. */
export const outboxParams = (events: number, deliveries: number): number =>
  events * EVENT_COLUMNS.length + deliveries * DELIVERY_COLUMNS.length;

/** The columns a delivery INSERT returns when some of its rows were written leased. */
export const LEASED_COLUMNS = 'id, event_id, circuit_key, status';

/** Remember the ids of the rows written leased (`inflight`), from rows of `LEASED_COLUMNS`. */
export function keepLeased(
  written: OutboxWritten,
  rows: Array<{ id: unknown; event_id: string; circuit_key: string; status: string }>,
): OutboxWritten {
  for (const r of rows) if (r.status === 'inflight') written.leased.set(deliveryKey(r.event_id, r.circuit_key), Number(r.id));
  return written;
}

function eventRowsOf(events: RelayEvent[], stored: Map<string, string>, now: number): unknown[][] {
  return events.map((e) => {
    const data = JSON.stringify(e.data);
    stored.set(e.id, data);
    return [e.id, e.type, e.deviceid, e.timestamp, data, e.requestId ?? null, now];
  });
}

export async function insertOutbox(
  sequelize: Sequelize,
  events: RelayEvent[],
  deliveries: NewDelivery[],
  transaction: Transaction | undefined,
  now = Date.now(),
  /** Skip events whose id is stored already (a re-publish keeps the original event id). */
  options: { ignoreExisting?: boolean } = {},
): Promise<OutboxWritten> {
  if (events.length === 0) return { leased: new Map(), stored: new Map() };
  if (
    sequelize.getDialect() === 'postgres' &&
    outboxParams(events.length, deliveries.length) <= PG_ONE_STATEMENT_PARAMS &&
    deliveries.length > 0
  ) {
    const bind: unknown[] = [];
    const w = pgOutboxStatements(events, deliveries, bind, now, options);
    const written = { leased: new Map(), stored: w.stored };
    const sql = `WITH ev AS (${w.events}) ${w.deliveries!}`;
    return keepLeased(written, await runSql<ReturnedDelivery>(sequelize, sql, bind, transaction, { prepare: true }));
  }
  const stored = new Map<string, string>();
  const written = { leased: new Map(), stored };
  const eventRows = eventRowsOf(events, stored, now);
  const deliveryRows = deliveries.map((d) => deliveryRow(d, now));
  // Only leased rows are sent from memory, so only they need their ids back.
  const returning = deliveries.some((d) => d.lease) ? LEASED_COLUMNS : undefined;
  if (options.ignoreExisting) await insertIgnore(sequelize, 'relay_events', 'id', EVENT_COLUMNS, eventRows, transaction);
  else await insertRows(sequelize, 'relay_events', EVENT_COLUMNS, eventRows, transaction);
  // Events kept for a later replay (`TargetPlugin.retain`) may have no delivery yet.
  return keepLeased(written, await insertRows(sequelize, 'relay_deliveries', DELIVERY_COLUMNS, deliveryRows, transaction, returning));
}
