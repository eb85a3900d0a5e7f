/**
 * A first relay: an `orders` table on SQLite and an `order.created` event for each order, delivered to an
 * HTTP receiver with retries and a Standard Webhooks signature. An order that rolls back sends nothing.
 *
 *   RECEIVER_URL=http://127.0.0.1:8080 SIGNING_SECRET=whsec_... npx tsx first-relay.ts
 */
// #region setup
import { once } from 'node:events';
import { createEvent, createRelay, exponentialBackoff, openDatabase } from 'raqeem-relay';
import { httpTarget } from 'raqeem-relay/plugins/http';

const db = openDatabase(process.env.DATABASE_URL ?? 'sqlite:./shop.sqlite');
await db.sequelize.query('CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, total INTEGER NOT NULL)');

const relay = await createRelay({
  db, // createRelay applies the outbox migrations to this database
  targets: [
    httpTarget({
      name: 'shipping',
      baseUrl: process.env.RECEIVER_URL ?? 'http://127.0.0.1:8080',
      routes: { 'order.created': '/orders' }, // event type -> path; other types are not sent here
      retry: exponentialBackoff({ retries: 5, baseMs: 1000 }), // 6 attempts: then 1 s, 2 s, 4 s, 8 s, 16 s apart
      signingSecret: process.env.SIGNING_SECRET, // optional: webhook-id / -timestamp / -signature headers
    }),
  ],
});
await relay.start(); // the dispatcher: delivers what commits
// #endregion setup

// #region publish
async function placeOrder(id: string, total: number, fail = false): Promise<void> {
  await db.transaction(async (transaction) => {
    await db.sequelize.query('INSERT INTO orders (id, total) VALUES ($1, $2)', { bind: [id, total], transaction });
    // Written in the same transaction: delivered if and only if the order commits.
    await relay.publish(createEvent({ type: 'order.created', data: { id, total } }), { transaction });
    if (fail) throw new Error('payment declined'); // rolls back the order and its event
  });
}
// #endregion publish

const delivered = once(relay.events, 'delivery:succeeded');
relay.events.on('delivery:dead', (d) => {
  console.error(`delivery of ${d.eventType} is dead: ${d.statusCode ?? d.error}`);
  process.exitCode = 1;
});

await placeOrder(`ord_${Date.now()}`, 4200);
await placeOrder(`ord_${Date.now()}_declined`, 999, true).catch((err: Error) => console.log(`not placed: ${err.message}`));
const [info] = await delivered;
console.log(`delivered ${info.eventType} ${info.eventIds[0]} to ${info.target} (HTTP ${info.statusCode})`);

// #region stop
await relay.stop(); // stops claiming, waits for in-flight requests, releases leases
await db.close();
// #endregion stop
