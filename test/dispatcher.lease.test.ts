import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QueryTypes } from 'sequelize';
import type { Transaction } from 'sequelize';
import { openDatabase } from '../lib/db.js';
import { createRelay } from '../lib/relay.js';
import type { Relay } from '../lib/relay.js';
import { claimDeliveries } from '../lib/sql/claimDeliveries.js';
import { mentorTarget } from '../plugins/mentor.js';
import { DIALECTS } from './helpers/db.js';
import { metricEvent, relayFixture } from './helpers/relay.js';
import type { RelayFixture } from './helpers/relay.js';
import { eventually, startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';

const bodyIds = (sink: Sink) =>
  sink.requests.flatMap((r) => {
    const b = JSON.parse(r.body);
    return (Array.isArray(b) ? b : [b]).map((m: { metricid: string }) => m.metricid);
  });

describe.each(DIALECTS)('leases and shutdown (%s)', (dialect) => {
  let fx: RelayFixture;
  let sink: Sink;
  beforeEach(async () => {
    fx = await relayFixture(dialect);
    sink = await startSink();
  });
  afterEach(async () => {
    await fx.cleanup();
    await sink.close();
  });

  it('redelivers, after the lease expires, what a dispatcher claimed and never finished', async () => {
    const relay = await fx.make({
      targets: [mentorTarget({ url: sink.url, backoffBaseMs: 20 })],
      dispatcher: { pollIntervalMs: 50, leaseMs: 600, requestTimeoutMs: 500 },
    });
    const events = Array.from({ length: 5 }, () => metricEvent());
    await relay.publish(events);
    // A dispatcher that claims and then dies: its leases are left behind in the table.
    const ghost = await claimDeliveries(fx.tdb.db.sequelize, {
      dialect: fx.tdb.db.dialect,
      owner: 'crashed-worker',
      now: Date.now(),
      leaseMs: 600,
      limit: 100,
      perKeyCap: { mentor: 100 },
      defaultPerKeyCap: 1,
      excludeKeys: [],
      targets: ['mentor'],
    });
    expect(ghost).toHaveLength(5);
    await relay.start();
    // While the lease holds, nobody else sends them.
    await new Promise((r) => setTimeout(r, 250));
    expect(sink.requests).toHaveLength(0);
    await eventually(async () => (await relay.listDeliveries({ status: 'succeeded' })).data.length === 5, 10_000);
    expect(bodyIds(sink).sort()).toEqual(events.map((e) => e.data.metricid as string).sort());
  });

  it('graceful stop waits for the in-flight request and records its result', async () => {
    sink.respond(async () => {
      await new Promise((r) => setTimeout(r, 400));
      return { status: 200 };
    });
    const relay = await fx.make({ targets: [mentorTarget({ url: sink.url, backoffBaseMs: 20 })], dispatcher: { pollIntervalMs: 50 } });
    await relay.start();
    await relay.publish(metricEvent());
    await sink.waitFor(1);
    await relay.stop({ timeoutMs: 5000 });
    expect(relay.dispatcher.isRunning).toBe(false);
    const [d] = (await relay.listDeliveries()).data;
    expect(d!.status).toBe('succeeded');
    expect(d!.attempts).toBe(1);
  });

  it('stop with a short timeout aborts the request and returns the delivery to the queue without spending an attempt', async () => {
    sink.respond(() => 'hang');
    const relay = await fx.make({ targets: [mentorTarget({ url: sink.url, backoffBaseMs: 20 })], dispatcher: { pollIntervalMs: 50 } });
    await relay.start();
    await relay.publish(metricEvent());
    await sink.waitFor(1);
    await relay.stop({ timeoutMs: 100 });
    const [d] = (await relay.listDeliveries()).data;
    expect(d!.status).toBe('pending');
    expect(d!.attempts).toBe(0);
  });

  it('leaves a type whose toggle is off out of the outbox', async () => {
    const relay = await fx.make({
      targets: [mentorTarget({ url: sink.url, enabled: (type) => type !== 'process.snapshot' })],
    });
    const r = await relay.publish([
      {
        id: 'evt_proc1',
        type: 'process.snapshot',
        deviceid: 'd',
        timestamp: new Date().toISOString(),
        data: { deviceid: 'd', snapshot_at: new Date().toISOString(), processes: [] },
      },
      metricEvent(),
    ]);
    expect(r.deliveries).toBe(1);
    const rows = await fx.tdb.db.sequelize.query<{ event_type: string }>('SELECT event_type FROM relay_deliveries', {
      type: QueryTypes.SELECT,
    });
    expect(rows.map((x) => x.event_type)).toEqual(['metric.submitted']);
  });

  /** Start `relay` and let one delivery go through: its claims have found everything that was due. */
  const caughtUp = async (relay: Relay) => {
    await relay.start();
    await relay.publish(metricEvent());
    await sink.waitFor(1);
    sink.requests.length = 0;
    await eventually(async () => (await relay.listDeliveries({ status: 'succeeded' })).data.length === 1);
    await fx.tdb.db.sequelize.query('DELETE FROM relay_deliveries');
  };

  const leaseOf = (t?: Transaction) =>
    fx.tdb.db.sequelize.query<{ status: string; lease_owner: string | null }>('SELECT status, lease_owner FROM relay_deliveries', {
      type: QueryTypes.SELECT,
      transaction: t,
    });

  it('writes what a running, caught-up dispatcher can take already leased to it, and sends it once after commit', async () => {
    const relay = await fx.make({ targets: [mentorTarget({ url: sink.url })], dispatcher: { workerId: 'publisher' } });
    await caughtUp(relay);
    const event = metricEvent();
    await fx.tdb.db.transaction(async (t) => {
      await relay.publish(event, { transaction: t });
      expect(await leaseOf(t)).toEqual([{ status: 'inflight', lease_owner: 'publisher' }]);
      // Nothing goes out before the record is committed.
      await new Promise((r) => setTimeout(r, 100));
      expect(sink.requests).toHaveLength(0);
    });
    await eventually(async () => (await relay.listDeliveries({ status: 'succeeded' })).data.length === 1);
    expect(bodyIds(sink)).toEqual([event.data.metricid]);
  });

  it('hands leased rows back to the queue when its dispatcher stopped before the publish committed', async () => {
    const a = await fx.make({ targets: [mentorTarget({ url: sink.url })], dispatcher: { workerId: 'a' } });
    await caughtUp(a);
    const event = metricEvent();
    let stopping: Promise<void> | undefined;
    await fx.tdb.db.transaction(async (t) => {
      await a.publish(event, { transaction: t });
      // (Not awaited here: on SQLite the stop's own writes queue behind this transaction.)
      stopping = a.stop();
    });
    await stopping;
    await eventually(async () => (await leaseOf())[0]?.status === 'pending');
    expect(await leaseOf()).toEqual([{ status: 'pending', lease_owner: null }]);
    const b = await fx.make({ targets: [mentorTarget({ url: sink.url })], dispatcher: { workerId: 'b', pollIntervalMs: 50 } });
    await b.start();
    await eventually(async () => (await b.listDeliveries({ status: 'succeeded' })).data.length === 1);
    expect(bodyIds(sink)).toEqual([event.data.metricid]);
  });

  it('sends a queued row only while its lease covers the request: rows that waited too long go back, none is sent twice', async () => {
    // One request at a time, 150 ms each; a row may wait in the queue at most leaseMs - timeout - margin =
    // 700 - 300 - 200 = 200 ms. Without that rule rows would still be queued here when their lease ran out,
    // be claimed again, and go out twice.
    sink.respond(async () => {
      await new Promise((r) => setTimeout(r, 150));
      return { status: 200 };
    });
    const relay = await fx.make({
      targets: [mentorTarget({ url: sink.url, concurrency: 1, maxBatchSize: 1 })],
      dispatcher: { requestTimeoutMs: 300, leaseMs: 700, pollIntervalMs: 50 },
    });
    const events = Array.from({ length: 12 }, () => metricEvent());
    await relay.publish(events);
    await relay.start();
    await eventually(async () => (await relay.listDeliveries({ status: 'succeeded' })).data.length === 12, 20_000);
    await new Promise((r) => setTimeout(r, 500));
    expect(bodyIds(sink).sort()).toEqual(events.map((e) => e.data.metricid as string).sort());
    const attempts = await fx.tdb.db.sequelize.query<{ n: unknown }>('SELECT COUNT(*) AS n FROM relay_attempts', {
      type: QueryTypes.SELECT,
    });
    expect(Number(attempts[0]!.n)).toBe(12);
  });
});

describe('two dispatchers on one PostgreSQL outbox', () => {
  let fx: RelayFixture;
  let sink: Sink;
  const extra: Relay[] = [];
  beforeEach(async () => {
    fx = await relayFixture('postgres');
    sink = await startSink();
  });
  afterEach(async () => {
    await Promise.all(extra.map((r) => r.stop()));
    await Promise.all(extra.map((r) => r.db.close()));
    extra.length = 0;
    await fx.cleanup();
    await sink.close();
  });

  it('delivers 2,000 events with none sent twice', async () => {
    const a = await fx.make({ targets: [mentorTarget({ url: sink.url })], dispatcher: { batchSize: 50, workerId: 'a' } });
    const b = await createRelay({
      db: openDatabase(fx.tdb.url),
      targets: [mentorTarget({ url: sink.url })],
      dispatcher: { batchSize: 50, workerId: 'b' },
    });
    extra.push(b);
    // Make both dispatchers busy: the sink answers after a short pause so claims interleave.
    sink.respond(async () => {
      await new Promise((r) => setTimeout(r, 5));
      return { status: 200 };
    });
    await a.start();
    await b.start();
    const events = Array.from({ length: 2000 }, (_, i) => metricEvent(`dev-${i % 20}`));
    for (let i = 0; i < events.length; i += 100) await a.publish(events.slice(i, i + 100));
    await eventually(async () => {
      const rows = await fx.tdb.db.sequelize.query<{ n: string }>("SELECT COUNT(*) AS n FROM relay_deliveries WHERE status = 'succeeded'", {
        type: QueryTypes.SELECT,
      });
      return Number(rows[0]!.n) === 2000;
    }, 60_000);
    const ids = bodyIds(sink);
    expect(ids).toHaveLength(2000);
    expect(new Set(ids).size).toBe(2000);
    const owners = await fx.tdb.db.sequelize.query<{ n: string }>('SELECT COUNT(DISTINCT delivery_id) AS n FROM relay_attempts', {
      type: QueryTypes.SELECT,
    });
    expect(Number(owners[0]!.n)).toBe(2000);
    // Both workers took part.
    expect(a.metrics.success).toBeDefined();
    const perWorker = await Promise.all([a, b].map(async (r) => (await r.metrics.success.get()).values.reduce((n, v) => n + v.value, 0)));
    expect(perWorker[0]! + perWorker[1]!).toBe(2000);
    expect(Math.min(...perWorker)).toBeGreaterThan(0);
  });
});
