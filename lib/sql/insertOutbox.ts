/**
 * Write events and their delivery rows in the caller's transaction: two multi-row INSERTs (`insertRows`),
 * whatever the number of events, so publishing costs the ingest path two statements and no model instantiation.
 */
import type { Sequelize, Transaction } from 'sequelize';
import type { RelayEvent } from '../events.js';
import { insertRows } from './insertRows.js';

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
  await insertRows(
    sequelize,
    'relay_events',
    ['id', 'type', 'deviceid', 'timestamp', 'data', 'request_id', 'created_at'],
    events.map((e) => [e.id, e.type, e.deviceid, e.timestamp, JSON.stringify(e.data), e.requestId ?? null, now]),
    transaction,
  );
  await insertRows(
    sequelize,
    'relay_deliveries',
    ['event_id', 'event_type', 'deviceid', 'target', 'endpoint_id', 'circuit_key', 'status', 'attempts', 'max_attempts', 'next_attempt_at', 'created_at', 'updated_at'],
    deliveries.map((d) => [
      d.event.id, d.event.type, d.event.deviceid, d.target, d.endpointId, d.circuitKey,
      'pending', 0, d.maxAttempts, d.nextAttemptAt, now, now,
    ]),
    transaction,
  );
}
