/**
 * The one path every ingest route goes through: store the record(s) and publish their events in one
 * transaction, so a request is stored whole or not at all and its deliveries commit with it.
 */
import type { Transaction } from 'sequelize';
import type { Database } from '../../../lib/db.js';
import type { RelayEvent } from '../../../lib/events.js';
import type { Logger } from '../../../lib/logger.js';
import type { Relay } from '../../../lib/relay.js';
import type { ResolvedConfig } from '../../shared/config.js';
import { requireDevice } from './sql.js';
import type { Row } from './sql.js';

export interface DevicesContext {
  db: Database;
  relay: Relay;
  config: ResolvedConfig;
  logger: Logger;
}

/** Events per `publish`: each event's deliveries (mentor + webhook endpoints) share one multi-row INSERT. */
const PUBLISH_CHUNK = 200;

export async function publishAll(relay: Relay, events: RelayEvent[], transaction: Transaction, targets?: string[]): Promise<number> {
  let deliveries = 0;
  for (let i = 0; i < events.length; i += PUBLISH_CHUNK) {
    deliveries += (await relay.publish(events.slice(i, i + PUBLISH_CHUNK), { transaction, targets })).deliveries;
  }
  return deliveries;
}

/**
 * Run an ingestion: inside one transaction, check the device exists, let `store` write rows and return the
 * events, then publish them. Throws (and rolls everything back) on any failure.
 */
export async function ingest<T>(
  ctx: DevicesContext,
  deviceid: string,
  store: (t: Transaction, device: Row) => Promise<{ events: RelayEvent[]; result: T }>,
  options: { lockDevice?: boolean } = {},
): Promise<T> {
  return ctx.db.transaction(async (t) => {
    const device = await requireDevice(ctx.db, deviceid, t, { forUpdate: options.lockDevice });
    const { events, result } = await store(t, device);
    await publishAll(ctx.relay, events, t);
    return result;
  });
}
