/**
 * Workers on PostgreSQL: web processes publish (their relay is never started), worker processes deliver.
 * Every process shares one outbox; a commit wakes the workers at once (LISTEN/NOTIFY), each delivery is
 * claimed by one worker (`FOR UPDATE SKIP LOCKED`), and a crashed worker's leases are taken over.
 *
 *   DATABASE_URL=postgres://user@127.0.0.1:5432/shop RECEIVER_URL=http://127.0.0.1:8080 npx tsx worker.ts work
 *   DATABASE_URL=postgres://user@127.0.0.1:5432/shop npx tsx worker.ts publish 10
 */
import { createEvent, createRelay, exponentialBackoff, openDatabase } from 'raqeem-relay';
import type { RelayOptions, TargetPlugin } from 'raqeem-relay';
import { httpTarget } from 'raqeem-relay/plugins/http';

const [mode = 'work', count = '1'] = process.argv.slice(2);
const databaseUrl = process.env.DATABASE_URL;
if (!databaseUrl?.startsWith('postgres')) throw new Error('DATABASE_URL must be a postgres:// URL: workers share one outbox');

// #region targets
// Every process gets the same targets: publishers route with them, workers send with them.
const targets: TargetPlugin[] = [
  httpTarget({
    name: 'fulfilment', // stored on each delivery row: keep it stable
    baseUrl: process.env.RECEIVER_URL ?? 'http://127.0.0.1:8080',
    routes: {
      // A backlog of `order.paid` may travel as one JSON array of up to maxBatchSize bodies.
      'order.paid': { path: '/orders/paid', batch: true },
      'order.refunded': {
        path: (e) => `/orders/${encodeURIComponent(String(e.data.order))}/refund`,
        body: (e) => ({ ...e.data, at: e.timestamp }),
      },
    },
    retry: exponentialBackoff({ retries: 8, baseMs: 2000 }), // 9 attempts over about 8.5 minutes
    maxBatchSize: 50,
    concurrency: 4, // requests in flight to this receiver
    circuit: { failureThreshold: 5, cooldownMs: 5_000, maxCooldownMs: 60_000 },
    headers: { authorization: `Bearer ${process.env.RECEIVER_TOKEN ?? 'dev-token'}` },
    signingSecret: process.env.SIGNING_SECRET,
    enabled: (type) => process.env.FORWARD_REFUNDS !== 'false' || type !== 'order.refunded', // a toggle, checked at publish
  }),
];
const db = openDatabase(databaseUrl, { pool: { max: 5 } });
// #endregion targets

if (mode === 'publish') {
  // #region publisher
  // A web process: it writes the outbox in its transactions and never starts the relay.
  const relay = await createRelay({ db, targets, listen: false });
  for (let i = 0; i < Number(count); i++) {
    await relay.publish(createEvent({ type: 'order.paid', data: { order: `ord_${i}`, amount: 100 + i } }));
  }
  await relay.stop();
  await db.close();
  // #endregion publisher
  console.log(`published ${count} events`);
} else {
  // #region worker
  const options: RelayOptions = { db, targets, dispatcher: { batchSize: 200 } };
  const relay = await createRelay(options);
  relay.events.on('delivery:succeeded', (d) => console.log(`delivered ${d.eventIds.length} ${d.eventType}`));
  relay.events.on('delivery:dead', (d) => console.error(`dead: ${d.eventType} ${d.eventIds.join(',')}: ${d.error}`));
  await relay.start();
  console.log('worker started');

  // The library installs no signal handlers: the process decides when to stop.
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, async () => {
      await relay.stop({ timeoutMs: 10_000 }); // stop claiming, finish in-flight requests, release leases
      await db.close();
      console.log('worker stopped');
    });
  }
  // #endregion worker
}
