/** Fixtures for relay tests: a relay on a fresh database with a mentor-like target aimed at a sink. */
import { createRelay } from '../../lib/relay.js';
import type { Relay, RelayOptions } from '../../lib/relay.js';
import { createEvent } from '../../lib/events.js';
import { silentLogger } from '../../lib/logger.js';
import type { RelayEvent } from '../../lib/events.js';
import { createTestDatabase } from './db.js';
import type { TestDatabase, TestDialect } from './db.js';

export interface RelayFixture {
  tdb: TestDatabase;
  relays: Relay[];
  make(options: Omit<RelayOptions, 'db'>): Promise<Relay>;
  cleanup(): Promise<void>;
}

export async function relayFixture(dialect: TestDialect): Promise<RelayFixture> {
  const tdb = await createTestDatabase(dialect);
  const relays: Relay[] = [];
  return {
    tdb,
    relays,
    async make(options) {
      // Quiet unless a test passes its own logger (the library's default writes warnings to stderr).
      const r = await createRelay({ db: tdb.db, logger: silentLogger, ...options });
      relays.push(r);
      return r;
    },
    async cleanup() {
      await Promise.all(relays.map((r) => r.stop({ timeoutMs: 1000 })));
      for (const r of relays) if (r.dispatcher.isRunning) throw new Error('a dispatcher was left running');
      await tdb.drop();
    },
  };
}

let seq = 0;
export function metricEvent(deviceid = 'dev-1', extra: Record<string, unknown> = {}): RelayEvent {
  seq += 1;
  return createEvent({
    type: 'metric.submitted',
    deviceid,
    data: { metricid: `m-${process.pid}-${seq}`, deviceid, cpu_usage: 12.5, ...extra },
  });
}
