import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QueryTypes } from 'sequelize';
import { mentorTarget } from '../plugins/mentor.js';
import { DIALECTS } from './helpers/db.js';
import { metricEvent, relayFixture } from './helpers/relay.js';
import type { RelayFixture } from './helpers/relay.js';
import { eventually, startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';

describe.each(DIALECTS)('outbox publish (%s)', (dialect) => {
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

  it('delivers nothing for a publish inside a rolled-back transaction', async () => {
    const relay = await fx.make({ targets: [mentorTarget({ url: sink.url, backoffBaseMs: 20 })], dispatcher: { pollIntervalMs: 50 } });
    await relay.start();
    await expect(
      fx.tdb.db.transaction(async (transaction) => {
        await relay.publish(metricEvent(), { transaction });
        throw new Error('caller fails after publishing');
      }),
    ).rejects.toThrow('caller fails');
    const rows = await fx.tdb.db.sequelize.query<{ n: number }>('SELECT COUNT(*) AS n FROM relay_deliveries', { type: QueryTypes.SELECT });
    expect(Number(rows[0]?.n)).toBe(0);
    // A later committed publish is delivered; the rolled-back one never is.
    const ok = metricEvent();
    await fx.tdb.db.transaction((transaction) => relay.publish(ok, { transaction }));
    await sink.waitFor(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(sink.requests).toHaveLength(1);
    expect(JSON.parse(sink.requests[0]!.body).metricid).toBe(ok.data.metricid);
  });

  it('delivers a committed publish exactly once, with the event id as Idempotency-Key', async () => {
    const relay = await fx.make({ targets: [mentorTarget({ url: sink.url, backoffBaseMs: 20 })], dispatcher: { pollIntervalMs: 50 } });
    await relay.start();
    const e = metricEvent('dev-9');
    await fx.tdb.db.transaction((transaction) => relay.publish(e, { transaction }));
    await sink.waitFor(1);
    await eventually(async () => (await relay.listDeliveries({ status: 'succeeded' })).data.length === 1);
    await new Promise((r) => setTimeout(r, 200));
    expect(sink.requests).toHaveLength(1);
    const req = sink.requests[0]!;
    expect(req.path).toBe('/devices/metrics');
    expect(req.headers['idempotency-key']).toBe(e.id);
    expect(JSON.parse(req.body)).toEqual(e.data);
  });
});

describe('a relay without targets', () => {
  it('publishes nothing and dispatches without errors', async () => {
    const fx = await relayFixture('sqlite');
    try {
      const relay = await fx.make({ targets: [], dispatcher: { pollIntervalMs: 20 } });
      const errors: Error[] = [];
      relay.events.on('dispatcher:error', ({ error }) => errors.push(error));
      await relay.start();
      expect(await relay.publish(metricEvent())).toEqual({ deliveries: 0 });
      await new Promise((r) => setTimeout(r, 200));
      expect(errors).toEqual([]);
    } finally {
      await fx.cleanup();
    }
  });
});
