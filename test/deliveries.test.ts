import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import pg from 'pg';
import { QueryTypes } from 'sequelize';
import { openDatabase } from '../lib/db.js';
import { keysOf } from '../lib/notifier.js';
import { insertOutbox } from '../lib/sql/insertOutbox.js';
import type { NewDelivery } from '../lib/sql/insertOutbox.js';
import { createRelay } from '../lib/relay.js';
import type { Relay } from '../lib/relay.js';
import { mentorTarget } from '../plugins/mentor.js';
import { DIALECTS } from './helpers/db.js';
import { metricEvent, relayFixture } from './helpers/relay.js';
import type { RelayFixture } from './helpers/relay.js';
import { eventually, startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';

describe.each(DIALECTS)('delivery log and dead letters (%s)', (dialect) => {
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

  it('lists, retries one and recovers a window of dead deliveries', async () => {
    let healthy = false;
    sink.respond(() => (healthy ? { status: 200 } : { status: 422 }));
    const relay = await fx.make({ targets: [mentorTarget({ url: sink.url })], dispatcher: { pollIntervalMs: 50 } });
    await relay.start();
    const events = Array.from({ length: 4 }, (_, i) => metricEvent(`dev-${i}`));
    for (const e of events) await relay.publish(e);
    await eventually(async () => (await relay.listDeliveries({ status: 'dead' })).data.length === 4);

    const byDevice = await relay.listDeliveries({ status: 'dead', deviceid: 'dev-2' });
    expect(byDevice.data).toHaveLength(1);
    expect(byDevice.data[0]!.last_status_code).toBe(422);

    healthy = true;
    expect(await relay.retryDelivery(byDevice.data[0]!.id)).toBe('requeued');
    await eventually(async () => (await relay.getDelivery(byDevice.data[0]!.id))!.status === 'succeeded');
    expect(await relay.retryDelivery(987654)).toBe('not_found');

    const n = await relay.recoverDead({ since: Date.now() - 60_000 });
    expect(n).toBe(3);
    await eventually(async () => (await relay.listDeliveries({ status: 'succeeded' })).data.length === 4);
    const d = (await relay.getDelivery(byDevice.data[0]!.id))!;
    expect(d.attempts_log.map((a) => a.status_code)).toEqual([422, 200]);
    // Attempt numbers keep counting across a re-queue, which gives a fresh budget on top of those made.
    expect(d.attempts_log.map((a) => a.number)).toEqual([1, 2]);
    expect(d).toMatchObject({ attempts: 2, max_attempts: 5 });
    expect(d.event).toMatchObject({ id: events[2]!.id, type: 'metric.submitted' });
  });

  it('recovers only the requested window', async () => {
    sink.respond(() => ({ status: 400 }));
    const relay = await fx.make({ targets: [mentorTarget({ url: sink.url })], dispatcher: { pollIntervalMs: 50 } });
    await relay.start();
    await relay.publish(metricEvent());
    await eventually(async () => (await relay.listDeliveries({ status: 'dead' })).data.length === 1);
    expect(await relay.recoverDead({ since: Date.now() + 60_000 })).toBe(0);
    expect(await relay.recoverDead({ since: 0, until: 1 })).toBe(0);
    expect(await relay.recoverDead({ since: 0, target: 'webhooks' })).toBe(0);
  });

  it('paginates newest first with a cursor that stays stable while new deliveries arrive', async () => {
    const relay = await fx.make({ targets: [mentorTarget({ url: sink.url })] });
    for (let i = 0; i < 7; i++) await relay.publish(metricEvent(`dev-${i}`));
    const p1 = await relay.listDeliveries({ limit: 3 });
    expect(p1.data.map((d) => d.deviceid)).toEqual(['dev-6', 'dev-5', 'dev-4']);
    await relay.publish(metricEvent('dev-new'));
    const p2 = await relay.listDeliveries({ limit: 3, cursor: p1.next_cursor! });
    expect(p2.data.map((d) => d.deviceid)).toEqual(['dev-3', 'dev-2', 'dev-1']);
    const p3 = await relay.listDeliveries({ limit: 3, cursor: p2.next_cursor! });
    expect(p3.data.map((d) => d.deviceid)).toEqual(['dev-0']);
    expect(p3.next_cursor).toBeNull();
    await expect(relay.listDeliveries({ cursor: 'not-a-cursor' })).rejects.toThrow('cursor');
  });

  it('prunes finished deliveries past retention and keeps pending ones', async () => {
    const relay = await fx.make({ targets: [mentorTarget({ url: sink.url })], dispatcher: { pollIntervalMs: 50 } });
    await relay.start();
    await relay.publish(metricEvent());
    await eventually(async () => (await relay.listDeliveries({ status: 'succeeded' })).data.length === 1);
    await relay.stop();
    await relay.publish(metricEvent());
    const old = Date.now() - 40 * 86_400_000;
    await fx.tdb.db.sequelize.query("UPDATE relay_deliveries SET finished_at = :old WHERE status = 'succeeded'", { replacements: { old } });
    expect(await relay.prune(30)).toBe(1);
    const left = await fx.tdb.db.sequelize.query<{ status: string }>('SELECT status FROM relay_deliveries', { type: QueryTypes.SELECT });
    expect(left.map((r) => r.status)).toEqual(['pending']);
    const attempts = await fx.tdb.db.sequelize.query<{ n: string }>('SELECT COUNT(*) AS n FROM relay_attempts', {
      type: QueryTypes.SELECT,
    });
    expect(Number(attempts[0]!.n)).toBe(0);
  });
});

describe('LISTEN/NOTIFY on PostgreSQL', () => {
  let fx: RelayFixture;
  let sink: Sink;
  let other: Relay | null = null;
  beforeEach(async () => {
    fx = await relayFixture('postgres');
    sink = await startSink();
  });
  afterEach(async () => {
    await other?.stop();
    await other?.db.close();
    await fx.cleanup();
    await sink.close();
  });

  it('names the keys that got pending rows in the notification, and sends none for rows written leased', async () => {
    const relay = await fx.make({ targets: [mentorTarget({ url: sink.url })], listen: false });
    const listener = new pg.Client({ connectionString: fx.tdb.url });
    const payloads: string[] = [];
    listener.on('notification', (n) => payloads.push(n.payload ?? ''));
    await listener.connect();
    try {
      await listener.query('LISTEN relay_outbox');
      const write = (keys: string[], lease?: NewDelivery['lease']) => {
        const deliveries: NewDelivery[] = keys.map((key) => ({
          event: metricEvent(),
          target: 'webhooks',
          endpointId: null,
          circuitKey: key,
          maxAttempts: 3,
          nextAttemptAt: Date.now(),
          lease,
        }));
        return relay.db.transaction((t) =>
          insertOutbox(
            relay.db.sequelize,
            deliveries.map((d) => d.event),
            deliveries,
            t,
            Date.now(),
          ),
        );
      };
      const odd = `webhooks:{"a,b"}\\'x`;
      await write(['webhooks:b', odd, 'webhooks:b']);
      await write(['webhooks:c'], { owner: 'me', until: Date.now() + 60_000 });
      await write(Array.from({ length: 200 }, (_, i) => `webhooks:${'k'.repeat(30)}${i}`));
      await eventually(() => payloads.length >= 2);
      expect(payloads).toHaveLength(2);
      // In commit order: the leased write sent nothing; 200 long keys do not fit, so they are not named.
      expect(JSON.parse(payloads[0]!).sort()).toEqual([odd, 'webhooks:b'].sort());
      expect(payloads[1]).toBe('');
      expect(keysOf(payloads[0])).toEqual(JSON.parse(payloads[0]!));
      for (const unnamed of ['', undefined, '[]', '{"a":1}', '[1]', 'not json']) expect(keysOf(unnamed)).toBeNull();
    } finally {
      await listener.end();
    }
  });

  it('wakes a dispatcher in another process at commit, long before its poll', async () => {
    const worker = await fx.make({ targets: [mentorTarget({ url: sink.url })], dispatcher: { pollIntervalMs: 600_000 } });
    await worker.start();
    // Let the first (empty) claim finish so the worker is asleep on its ten-minute poll.
    await new Promise((r) => setTimeout(r, 300));
    other = await createRelay({ db: openDatabase(fx.tdb.url), targets: [mentorTarget({ url: sink.url })], listen: false });
    await other.publish(metricEvent());
    await sink.waitFor(1, 15_000);
    expect(sink.requests).toHaveLength(1);
  });
});
