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

/** How long a device seen to exist is trusted without a lookup. */
export const KNOWN_DEVICE_TTL_MS = 30_000;
/** Devices remembered per database; past this the memory starts over (a lookup each, then remembered again). */
const KNOWN_DEVICES_MAX = 10_000;

/**
 * Devices seen to exist, so that an ingest does not look its device up on every request (one SELECT per
 * request was the most frequent statement of a devices host). Only existence is remembered, never the row:
 * no ingest route reads it. No route deletes a device, so a device that existed still does; the TTL bounds
 * how long a row deleted by hand is still trusted. An unknown device is never remembered (each request
 * looks it up and gets its 404).
 */
export class KnownDevices {
  private readonly seen = new Map<string, number>();

  constructor(
    private readonly ttlMs = KNOWN_DEVICE_TTL_MS,
    private readonly max = KNOWN_DEVICES_MAX,
  ) {}

  has(deviceid: string, now = Date.now()): boolean {
    const until = this.seen.get(deviceid);
    if (until === undefined) return false;
    if (until > now) return true;
    this.seen.delete(deviceid);
    return false;
  }

  add(deviceid: string, now = Date.now()): void {
    if (this.seen.size >= this.max && !this.seen.has(deviceid)) this.seen.clear();
    this.seen.set(deviceid, now + this.ttlMs);
  }
}

const knownDevices = new WeakMap<Database, KnownDevices>();

function knownDevicesOf(db: Database): KnownDevices {
  let known = knownDevices.get(db);
  if (!known) knownDevices.set(db, (known = new KnownDevices()));
  return known;
}

export interface DevicesContext {
  db: Database;
  relay: Relay;
  config: ResolvedConfig;
  logger: Logger;
}

/**
 * Run an ingestion through the relay's group commit: check the device exists (a lookup unless it was seen
 * in the last `KNOWN_DEVICE_TTL_MS`; always, locked, in the batch's transaction, with `lockDevice`), let
 * `store` queue its rows
 * (`tx.insert`) and return the events, which are queued too; the request is answered after the commit that
 * holds them, shared with concurrent requests. `store` may run twice (see `relay.transaction`). With
 * `direct`, `store` writes through `tx.transaction` itself and runs in a savepoint of its own.
 * Throws (and stores nothing of this request) on any failure.
 */
export async function ingest<T>(
  ctx: DevicesContext,
  deviceid: string,
  store: (tx: GroupTransaction) => Promise<{ events: RelayEvent[]; result: T }>,
  options: { lockDevice?: boolean; direct?: boolean } = {},
): Promise<T> {
  const known = knownDevicesOf(ctx.db);
  // Looked up before the batch, outside its transaction (existence is all it checks, and no route deletes
  // a device), so that the batch's work only queues writes: on PostgreSQL such a batch is one statement.
  if (!options.lockDevice && !known.has(deviceid)) {
    await requireDevice(ctx.db, deviceid);
    known.add(deviceid);
  }
  return ctx.relay.transaction(
    async (tx) => {
      if (options.lockDevice) await requireDevice(ctx.db, deviceid, tx.transaction, { forUpdate: true });
      const { events, result } = await store(tx);
      tx.publish(events);
      return result;
    },
    { savepoint: options.direct },
  );
}
