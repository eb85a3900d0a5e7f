import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mentorTarget } from '../plugins/mentor.js';
import { DIALECTS } from './helpers/db.js';
import { metricEvent, relayFixture } from './helpers/relay.js';
import type { RelayFixture } from './helpers/relay.js';
import { eventually, startSink } from './helpers/sink.js';

describe.each(DIALECTS)('circuit breaker (%s)', (dialect) => {
  let fx: RelayFixture;
  beforeEach(async () => {
    fx = await relayFixture(dialect);
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  it('opens on refused connections, spends no attempts while open, and drains the backlog when the target is back', async () => {
    // Reserve a port, then close it so connections are refused.
    const probe = await startSink();
    const port = probe.port;
    await probe.close();
    const relay = await fx.make({
      targets: [mentorTarget({ url: `http://127.0.0.1:${port}`, backoffBaseMs: 50, circuit: { cooldownMs: 200, maxCooldownMs: 400 } })],
      dispatcher: { pollIntervalMs: 50 },
    });
    const opened: string[] = [];
    relay.events.on('circuit:open', (t) => opened.push(t.key));
    await relay.start();
    const first = Array.from({ length: 3 }, () => metricEvent('dev-a'));
    for (const e of first) await relay.publish(e);
    await eventually(() => opened.includes('mentor'));
    // The request that opened the circuit has its result written, too.
    await eventually(async () => (await relay.listDeliveries()).data.every((d) => d.status === 'pending'));

    // While open, new work waits and the counters of waiting deliveries do not move.
    const backlog = Array.from({ length: 40 }, () => metricEvent('dev-b'));
    await relay.publish(backlog);
    const before = await relay.listDeliveries({ limit: 1000 });
    await new Promise((r) => setTimeout(r, 1200));
    const after = await relay.listDeliveries({ limit: 1000 });
    const spent = (list: typeof before.data) => list.reduce((n, d) => n + d.attempts, 0);
    expect(spent(after.data)).toBe(spent(before.data));
    expect(after.data.every((d) => d.status === 'pending' || d.status === 'inflight')).toBe(true);
    // No delivery was lost to the outage.
    expect(after.data.filter((d) => d.status === 'dead')).toHaveLength(0);

    const sink = await startSink(port);
    try {
      await eventually(async () => (await relay.listDeliveries({ status: 'succeeded', limit: 1000 })).data.length === 43, 20_000);
      const got = sink.requests.flatMap((r) => {
        const b = JSON.parse(r.body);
        return (Array.isArray(b) ? b : [b]).map((m: { metricid: string }) => m.metricid);
      });
      expect(got.sort()).toEqual([...first, ...backlog].map((e) => e.data.metricid as string).sort());
    } finally {
      await sink.close();
    }
  });
});

describe.each(DIALECTS)('redrive after recovery (%s)', (dialect) => {
  let fx: RelayFixture;
  beforeEach(async () => {
    fx = await relayFixture(dialect);
  });
  afterEach(async () => {
    await fx.cleanup();
  });

  it('re-queues deliveries that died of an outage once a probe succeeds, and leaves permanent refusals dead', async () => {
    const reserved = await startSink();
    const port = reserved.port;
    await reserved.close();
    // No retries at all: the first refused connection kills the delivery and opens the circuit.
    const relay = await fx.make({
      targets: [mentorTarget({ url: `http://127.0.0.1:${port}`, maxRetries: 0, circuit: { cooldownMs: 100, maxCooldownMs: 200 } })],
      dispatcher: { pollIntervalMs: 50 },
    });
    await relay.start();
    const lost = metricEvent('dev-outage');
    await relay.publish(lost);
    await eventually(async () => (await relay.listDeliveries({ status: 'dead' })).data.length === 1);

    const sink = await startSink(port);
    try {
      sink.respond((r) => (JSON.parse(r.body).deviceid === 'dev-refused' ? { status: 422 } : { status: 200 }));
      // New traffic becomes the probe; its success closes the circuit and re-drives the outage's dead.
      await relay.publish(metricEvent('dev-refused'));
      await relay.publish(metricEvent('dev-after'));
      await eventually(async () => (await relay.listDeliveries({ status: 'succeeded' })).data.length === 2);
      const got = sink.requests.flatMap((r) => [JSON.parse(r.body)].flat().map((m: { deviceid: string }) => m.deviceid));
      expect(got).toContain('dev-outage');
      const dead = (await relay.listDeliveries({ status: 'dead' })).data;
      expect(dead.map((d) => d.deviceid)).toEqual(['dev-refused']);
    } finally {
      await sink.close();
    }
  });
});
