/**
 * The one path every ingest route goes through: store the record(s) and publish their events in one
 * transaction, so a request is stored whole or not at all and its deliveries commit with it. The
 * transaction is shared with concurrent requests through the relay's group commit (lib/groupCommit.ts).
 */
import type { Database } from '../../../lib/db.js';
import type { RelayEvent } from '../../../lib/events.js';
import type { GroupTransaction } from '../../../lib/groupCommit.js';
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

/**
 * Run an ingestion through the relay's group commit: check the device exists, let `store` queue its rows
 * (`tx.insert`) and return the events, which are queued too; the request is answered after the commit that
 * holds them, shared with concurrent requests. `store` may run twice (see `relay.transaction`). With
 * `direct`, `store` writes through `tx.transaction` itself and runs in a savepoint of its own.
 * Throws (and stores nothing of this request) on any failure.
 */
export async function ingest<T>(
  ctx: DevicesContext,
  deviceid: string,
  store: (tx: GroupTransaction, device: Row) => Promise<{ events: RelayEvent[]; result: T }>,
  options: { lockDevice?: boolean; direct?: boolean } = {},
): Promise<T> {
  return ctx.relay.transaction(
    async (tx) => {
      const device = await requireDevice(ctx.db, deviceid, tx.transaction, { forUpdate: options.lockDevice });
      const { events, result } = await store(tx, device);
      tx.publish(events);
      return result;
    },
    { savepoint: options.direct },
  );
}
