/**
 * Write events and their delivery rows in the caller's transaction, whatever the number of events, with no
 * model instantiation. PostgreSQL: one statement (the events INSERT as a CTE of the deliveries INSERT), so
 * publishing costs an ingest one round trip. SQLite: two multi-row INSERTs (`insertRows`), in-process.
 */
import type { Sequelize, Transaction } from 'sequelize';
import type { RelayEvent } from '../events.js';
import { QueryTypes } from 'sequelize';
import { insertRows } from './insertRows.js';

const EVENT_COLUMNS = ['id', 'type', 'deviceid', 'timestamp', 'data', 'request_id', 'created_at'];
const DELIVERY_COLUMNS = ['event_id', 'event_type', 'deviceid', 'target', 'endpoint_id', 'circuit_key', 'status', 'attempts', 'max_attempts', 'next_attempt_at', 'created_at', 'updated_at'];
/** Above this many parameters the rows go in chunked statements (PostgreSQL's cap is 65,535). */
const PG_ONE_STATEMENT_PARAMS = 30_000;

function valuesList(rows: unknown[][], bind: unknown[]): string {
  return rows
    .map((row) => {
      const first = bind.length;
      bind.push(...row);
      return `(${row.map((_, k) => `$${first + k + 1}`).join(', ')})`;
    })
    .join(', ');
}

export interface NewDelivery {
  event: RelayEvent;
  target: string;
  endpointId: string | null;
  circuitKey: string;
  maxAttempts: number;
  nextAttemptAt: number;
}

export async function insertOutbox(
  sequelize: Sequelize,
  events: RelayEvent[],
  deliveries: NewDelivery[],
  transaction: Transaction | undefined,
  now = Date.now(),
): Promise<void> {
  if (deliveries.length === 0) return;
  const eventRows = events.map((e) => [e.id, e.type, e.deviceid, e.timestamp, JSON.stringify(e.data), e.requestId ?? null, now]);
  const deliveryRows = deliveries.map((d) => [
    d.event.id, d.event.type, d.event.deviceid, d.target, d.endpointId, d.circuitKey,
    'pending', 0, d.maxAttempts, d.nextAttemptAt, now, now,
  ]);
  const params = eventRows.length * EVENT_COLUMNS.length + deliveryRows.length * DELIVERY_COLUMNS.length;
  if (sequelize.getDialect() === 'postgres' && params <= PG_ONE_STATEMENT_PARAMS) {
    const bind: unknown[] = [];
    const sql = `WITH ev AS (INSERT INTO relay_events (${EVENT_COLUMNS.join(', ')}) VALUES ${valuesList(eventRows, bind)})
      INSERT INTO relay_deliveries (${DELIVERY_COLUMNS.join(', ')}) VALUES ${valuesList(deliveryRows, bind)}`;
    await sequelize.query(sql, { bind, transaction, type: QueryTypes.INSERT });
    return;
  }
  await insertRows(sequelize, 'relay_events', EVENT_COLUMNS, eventRows, transaction);
  await insertRows(sequelize, 'relay_deliveries', DELIVERY_COLUMNS, deliveryRows, transaction);
}
