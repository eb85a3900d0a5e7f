/**
 * Write events and their delivery rows in the caller's transaction, whatever the number of events, with no
 * model instantiation. PostgreSQL: one statement (the events INSERT as a CTE of the deliveries INSERT), so
 * publishing costs an ingest one round trip. SQLite: two multi-row INSERTs (`insertRows`), in-process.
 * A delivery may be written already leased to the publishing process's dispatcher (see `Relay.publish`);
 * the ids of those rows are returned.
 */
import type { Sequelize, Transaction } from 'sequelize';
import type { RelayEvent } from '../events.js';
import { runSql } from './driver.js';
import { insertIgnore, insertRows, pgValues } from './insertRows.js';

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
/** Above this many parameters the rows go in chunked statements (PostgreSQL's cap is 65,535). */
const PG_ONE_STATEMENT_PARAMS = 30_000;

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
interface ReturnedDelivery {
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

export async function insertOutbox(
  sequelize: Sequelize,
  events: RelayEvent[],
  deliveries: NewDelivery[],
  transaction: Transaction | undefined,
  now = Date.now(),
  /** Skip events whose id is stored already (a re-publish keeps the original event id). */
  options: { ignoreExisting?: boolean } = {},
): Promise<OutboxWritten> {
  const leased: LeasedIds = new Map();
  const stored = new Map<string, string>();
  const written = { leased, stored };
  if (events.length === 0) return written;
  const eventRows = events.map((e) => {
    const data = JSON.stringify(e.data);
    stored.set(e.id, data);
    return [e.id, e.type, e.deviceid, e.timestamp, data, e.requestId ?? null, now];
  });
  const deliveryRows = deliveries.map((d) => deliveryRow(d, now));
  // Only leased rows are sent from memory, so only they need their ids back.
  const returning = deliveries.some((d) => d.lease) ? 'id, event_id, circuit_key, status' : undefined;
  const keep = (rows: ReturnedDelivery[]) => {
    for (const r of rows) if (r.status === 'inflight') leased.set(deliveryKey(r.event_id, r.circuit_key), Number(r.id));
    return written;
  };
  const params = eventRows.length * EVENT_COLUMNS.length + deliveryRows.length * DELIVERY_COLUMNS.length;
  const ignore = options.ignoreExisting ? ' ON CONFLICT (id) DO NOTHING' : '';
  if (sequelize.getDialect() === 'postgres' && params <= PG_ONE_STATEMENT_PARAMS && deliveryRows.length > 0) {
    const bind: unknown[] = [];
    const sql = `WITH ev AS (INSERT INTO relay_events (${EVENT_COLUMNS.join(', ')}) VALUES ${pgValues(eventRows, bind)}${ignore})
      INSERT INTO relay_deliveries (${DELIVERY_COLUMNS.join(', ')}) VALUES ${pgValues(deliveryRows, bind)}${returning ? ` RETURNING ${returning}` : ''}`;
    return keep(await runSql<ReturnedDelivery>(sequelize, sql, bind, transaction));
  }
  if (ignore) await insertIgnore(sequelize, 'relay_events', 'id', EVENT_COLUMNS, eventRows, transaction);
  else await insertRows(sequelize, 'relay_events', EVENT_COLUMNS, eventRows, transaction);
  // Events kept for a later replay (`TargetPlugin.retain`) may have no delivery yet.
  return keep(await insertRows(sequelize, 'relay_deliveries', DELIVERY_COLUMNS, deliveryRows, transaction, returning));
}
