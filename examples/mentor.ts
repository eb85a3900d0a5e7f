/**
 * The mentor preset: device records forwarded to a Raqeem mentor host in the seed's record shape
 * (the record's fields plus `deviceid` and its record id), signed when a secret is given.
 *
 *   MENTOR_API_URL=http://127.0.0.1:30081 npx tsx mentor.ts
 */
// #region readme
import { randomUUID } from 'node:crypto';
import { createEvent, createRelay, openDatabase } from 'raqeem-relay';
import { mentorTarget } from 'raqeem-relay/plugins/mentor';

const db = openDatabase(process.env.DATABASE_URL ?? 'sqlite:./app.sqlite');
await db.sequelize.query('CREATE TABLE IF NOT EXISTS metrics (metricid TEXT PRIMARY KEY, deviceid TEXT, cpu_usage REAL)');
const relay = await createRelay({
  db,
  targets: [
    mentorTarget({ url: process.env.MENTOR_API_URL ?? 'http://127.0.0.1:30081', signingSecret: process.env.MENTOR_SIGNING_SECRET }),
  ],
});
await relay.start();

const deviceid = 'd1';
const metric = { metricid: randomUUID(), deviceid, cpu_usage: 42.5 };
await db.transaction(async (transaction) => {
  await db.sequelize.query('INSERT INTO metrics (metricid, deviceid, cpu_usage) VALUES ($1, $2, $3)', {
    bind: [metric.metricid, deviceid, metric.cpu_usage],
    transaction,
  });
  // Written in the same transaction: delivered if and only if the record commits. The mentor stores
  // `data` as the record, so it carries `deviceid` and the record id (`metricid`).
  await relay.publish(
    [
      createEvent({ type: 'device.registered', deviceid, data: { deviceid, device_name: 'Test Device' } }),
      createEvent({ type: 'metric.submitted', deviceid, data: metric }),
    ],
    { transaction },
  );
});

process.once('SIGTERM', () => void relay.stop({ timeoutMs: 10_000 }).then(() => db.close()));
// #endregion readme

// For the example: wait until both deliveries are finished, then stop.
for (;;) {
  const { data } = await relay.listDeliveries({ target: 'mentor' });
  const dead = data.filter((d) => d.status === 'dead');
  if (dead.length > 0)
    throw new Error(`dead: ${dead.map((d) => `${d.event_type} (HTTP ${d.last_status_code}) ${d.last_error}`).join(', ')}`);
  if (data.length === 2 && data.every((d) => d.status === 'succeeded')) break;
  await new Promise((resolve) => setTimeout(resolve, 50));
}
await relay.stop({ timeoutMs: 10_000 });
await db.close();
console.log(`forwarded device ${deviceid} and metric ${metric.metricid} to the mentor`);
