/**
 * Publishing inside your own transaction, three ways, on SQLite or PostgreSQL:
 *   1. sequelize models defined on the relay's connection (`db.sequelize`);
 *   2. plain SQL, as an app that uses `pg` directly writes it, run through the same transaction;
 *   3. group commit (`relay.transaction`), which shares one transaction between concurrent callers.
 *
 *   DATABASE_URL=postgres://user@127.0.0.1:5432/shop RECEIVER_URL=http://127.0.0.1:8080 npx tsx own-transaction.ts
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { DataTypes } from 'sequelize';
import { createEvent, createRelay, exponentialBackoff, openDatabase } from 'raqeem-relay';
import { httpTarget } from 'raqeem-relay/plugins/http';

const db = openDatabase(process.env.DATABASE_URL ?? 'sqlite:./shop.sqlite');
const relay = await createRelay({
  db,
  targets: [
    httpTarget({
      name: 'billing',
      baseUrl: process.env.RECEIVER_URL ?? 'http://127.0.0.1:8080',
      routes: { 'invoice.issued': '/invoices' },
      retry: exponentialBackoff({ retries: 5, baseMs: 1000 }),
    }),
  ],
});
await relay.start();

// #region sequelize
const Invoice = db.sequelize.define('Invoice', {
  id: { type: DataTypes.STRING, primaryKey: true },
  customer: { type: DataTypes.STRING, allowNull: false },
  amount: { type: DataTypes.INTEGER, allowNull: false },
});
await Invoice.sync(); // for the example only: use migrations in an application

await db.transaction(async (transaction) => {
  const invoice = await Invoice.create({ id: randomUUID(), customer: 'acme', amount: 1200 }, { transaction });
  await relay.publish(createEvent({ type: 'invoice.issued', data: invoice.toJSON() }), { transaction });
});
// #endregion sequelize

// #region raw-sql
// An app that writes with `pg` keeps its SQL; the statements of this unit of work run through the relay's
// transaction ($1, $2 ... are bound by the driver, on PostgreSQL and SQLite alike).
const id = randomUUID();
await db.transaction(async (transaction) => {
  await db.sequelize.query('INSERT INTO "Invoices" (id, customer, amount, "createdAt", "updatedAt") VALUES ($1, $2, $3, $4, $4)', {
    bind: [id, 'globex', 800, new Date().toISOString()],
    transaction,
  });
  await relay.publish(createEvent({ type: 'invoice.issued', data: { id, customer: 'globex', amount: 800 } }), { transaction });
});
// #endregion raw-sql

// Everything else may stay on the app's own pg.Pool: it sees the row once the transaction committed.
if (db.dialect === 'postgres') {
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
  const { rows } = await pool.query('SELECT customer FROM "Invoices" WHERE id = $1', [id]);
  console.log(`pg.Pool reads the committed invoice of ${rows[0].customer}`);
  await pool.end();
}

// #region group-commit
// Under concurrent load: callers share one transaction and one INSERT per table. `work` queues its rows
// and events and may run again (alone) if another caller's row fails the batch, so it has no other effects.
await Promise.all(
  ['initech', 'umbrella', 'hooli'].map((customer) =>
    relay.transaction(async (tx) => {
      const row = { id: randomUUID(), customer, amount: 100, createdAt: new Date().toISOString(), updatedAt: new Date().toISOString() };
      tx.insert('Invoices', [row]);
      tx.publish(createEvent({ type: 'invoice.issued', data: { id: row.id, customer, amount: row.amount } }));
    }),
  ),
);
// #endregion group-commit

// Wait until the five deliveries are done, then stop.
for (;;) {
  const counts = await relay.counts();
  const left = counts.filter((c) => c.status === 'pending' || c.status === 'inflight').reduce((n, c) => n + c.n, 0);
  const dead = counts.find((c) => c.status === 'dead')?.n ?? 0;
  if (dead > 0) throw new Error(`${dead} deliveries are dead`);
  if (left === 0) break;
  await new Promise((resolve) => setTimeout(resolve, 50));
}
console.log(`delivered: ${(await relay.listDeliveries({ status: 'succeeded' })).data.length} invoices`);
await relay.stop();
await db.close();
