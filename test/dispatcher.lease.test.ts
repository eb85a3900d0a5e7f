import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QueryTypes } from 'sequelize';
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
    const relay = await fx.make({ targets: [mentorTarget({ url: sink.url, backoffBaseMs: 20 })], dispatcher: { pollIntervalMs: 50, leaseMs: 600, requestTimeoutMs: 500 } });
    const events = Array.from({ length: 5 }, () => metricEvent());
    await relay.publish(events);
    // A dispatcher that claims and then dies: its leases are left behind in the table.
    const ghost = await claimDeliveries(fx.tdb.db.sequelize, {
      dialect: fx.tdb.db.dialect, owner: 'crashed-worker', now: Date.now(), leaseMs: 600, limit: 100,
      perKeyCap: { mentor: 100 }, defaultPerKeyCap: 1, excludeKeys: [], targets: ['mentor'],
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
      targets: [mentorTarget({ url: sink.url, toggles: { 'process.snapshot': false } })],
    });
    const r = await relay.publish([
      { id: 'evt_proc1', type: 'process.snapshot', deviceid: 'd', timestamp: new Date().toISOString(), data: { deviceid: 'd', snapshot_at: new Date().toISOString(), processes: [] } },
      metricEvent(),
    ]);
    expect(r.deliveries).toBe(1);
    const rows = await fx.tdb.db.sequelize.query<{ event_type: string }>('SELECT event_type FROM relay_deliveries', { type: QueryTypes.SELECT });
    expect(rows.map((x) => x.event_type)).toEqual(['metric.submitted']);
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
    const b = await createRelay({ db: openDatabase(fx.tdb.url), targets: [mentorTarget({ url: sink.url })], dispatcher: { batchSize: 50, workerId: 'b' } });
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
      const rows = await fx.tdb.db.sequelize.query<{ n: string }>("SELECT COUNT(*) AS n FROM relay_deliveries WHERE status = 'succeeded'", { type: QueryTypes.SELECT });
      return Number(rows[0]!.n) === 2000;
    }, 60_000);
    const ids = bodyIds(sink);
    expect(ids).toHaveLength(2000);
    expect(new Set(ids).size).toBe(2000);
    const owners = await fx.tdb.db.sequelize.query<{ n: string }>('SELECT COUNT(DISTINCT delivery_id) AS n FROM relay_attempts', { type: QueryTypes.SELECT });
    expect(Number(owners[0]!.n)).toBe(2000);
    // Both workers took part.
    expect(a.metrics.success).toBeDefined();
    const perWorker = await Promise.all([a, b].map(async (r) => (await r.metrics.success.get()).values.reduce((n, v) => n + v.value, 0)));
    expect(perWorker[0]! + perWorker[1]!).toBe(2000);
    expect(Math.min(...perWorker)).toBeGreaterThan(0);
  });
});
