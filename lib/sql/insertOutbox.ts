/**
 * Write events and their delivery rows in the caller's transaction: two multi-row INSERTs, whatever the
 * number of events, so publishing costs the ingest path two statements and no model instantiation.
 */
import { QueryTypes } from 'sequelize';
import type { Sequelize, Transaction } from 'sequelize';
import type { RelayEvent } from '../events.js';

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
  const eventValues: unknown[] = [];
  const eventRows = events.map((e) => {
    const i = eventValues.length;
    eventValues.push(e.id, e.type, e.deviceid, e.timestamp, JSON.stringify(e.data), e.requestId ?? null, now);
    return `($${i + 1}, $${i + 2}, $${i + 3}, $${i + 4}, $${i + 5}, $${i + 6}, $${i + 7})`;
  });
  await sequelize.query(
    `INSERT INTO relay_events (id, type, deviceid, timestamp, data, request_id, created_at) VALUES ${eventRows.join(', ')}`,
    { bind: eventValues, transaction, type: QueryTypes.INSERT },
  );
  const values: unknown[] = [];
  const rows = deliveries.map((d) => {
    const i = values.length;
    values.push(
      d.event.id, d.event.type, d.event.deviceid, d.target, d.endpointId, d.circuitKey,
      d.maxAttempts, d.nextAttemptAt, now,
    );
    const p = (k: number) => `$${i + k}`;
    return `(${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, 'pending', 0, ${p(7)}, ${p(8)}, ${p(9)}, ${p(9)})`;
  });
  await sequelize.query(
    `INSERT INTO relay_deliveries
       (event_id, event_type, deviceid, target, endpoint_id, circuit_key, status, attempts, max_attempts,
        next_attempt_at, created_at, updated_at)
     VALUES ${rows.join(', ')}`,
    { bind: values, transaction, type: QueryTypes.INSERT },
  );
}
