import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mentorTarget } from '../plugins/mentor.js';
import { DIALECTS } from './helpers/db.js';
import { metricEvent, relayFixture } from './helpers/relay.js';
import type { RelayFixture } from './helpers/relay.js';
import { eventually, startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';

const BASE_MS = 100;

describe.each(DIALECTS)('dispatcher retries (%s)', (dialect) => {
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

  const start = async () => {
    const relay = await fx.make({ targets: [mentorTarget({ url: sink.url, backoffBaseMs: BASE_MS })], dispatcher: { pollIntervalMs: 50 } });
    await relay.start();
    return relay;
  };

  it('answers 500, 500, 200 with exactly 3 attempts and growing delays', async () => {
    sink.respond((_r, i) => (i < 2 ? { status: 500, body: 'boom' } : { status: 200 }));
    const relay = await start();
    await relay.publish(metricEvent());
    const d = await eventually(async () => (await relay.listDeliveries({ status: 'succeeded' })).data[0]);
    const full = (await relay.getDelivery(d.id))!;
    expect(full.attempts).toBe(3);
    expect(full.attempts_log.map((a) => [a.number, a.status_code, a.outcome])).toEqual([
      [1, 500, 'retry'],
      [2, 500, 'retry'],
      [3, 200, 'success'],
    ]);
    expect(full.attempts_log[0]!.response_body).toBe('boom');
    expect(sink.requests).toHaveLength(3);
    // base x 2^n with +-20% jitter: at least 80 ms, then at least 160 ms.
    const gap1 = sink.requests[1]!.at - sink.requests[0]!.at;
    const gap2 = sink.requests[2]!.at - sink.requests[1]!.at;
    expect(gap1).toBeGreaterThanOrEqual(BASE_MS * 0.8 - 5);
    expect(gap2).toBeGreaterThanOrEqual(BASE_MS * 2 * 0.8 - 5);
    // The same event id on every try.
    expect(new Set(sink.requests.map((r) => r.headers['idempotency-key'])).size).toBe(1);
  });

  it('dead-letters a mentor 400 after one attempt', async () => {
    sink.respond(() => ({ status: 400, body: '{"error":"bad record"}' }));
    const relay = await start();
    await relay.publish(metricEvent());
    const d = await eventually(async () => (await relay.listDeliveries({ status: 'dead' })).data[0]);
    expect(d.attempts).toBe(1);
    expect(d.last_status_code).toBe(400);
    await new Promise((r) => setTimeout(r, 300));
    expect(sink.requests).toHaveLength(1);
  });

  it('dead-letters after FORWARD_MAX_RETRIES + 1 attempts of 503', async () => {
    sink.respond(() => ({ status: 503 }));
    const relay = await fx.make({
      targets: [mentorTarget({ url: sink.url, backoffBaseMs: 20, maxRetries: 2, circuit: { failureThreshold: 100 } })],
      dispatcher: { pollIntervalMs: 50 },
    });
    await relay.start();
    await relay.publish(metricEvent());
    const d = await eventually(async () => (await relay.listDeliveries({ status: 'dead' })).data[0]);
    expect(d.attempts).toBe(3);
    expect(sink.requests).toHaveLength(3);
  });

  it('honours Retry-After on 429', async () => {
    sink.respond((_r, i) => (i === 0 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 }));
    const relay = await start();
    await relay.publish(metricEvent());
    await eventually(async () => (await relay.listDeliveries({ status: 'succeeded' })).data.length === 1);
    expect(sink.requests).toHaveLength(2);
    // Without Retry-After the retry would come after ~100 ms; the server asked for 1 s.
    expect(sink.requests[1]!.at - sink.requests[0]!.at).toBeGreaterThanOrEqual(990);
  });

  it('batches a backlog of same-type events into array requests, each record once', async () => {
    const relay = await fx.make({ targets: [mentorTarget({ url: sink.url, backoffBaseMs: BASE_MS })], dispatcher: { pollIntervalMs: 50 } });
    const events = Array.from({ length: 250 }, () => metricEvent());
    await relay.publish(events);
    await relay.start();
    await eventually(
      async () =>
        (await relay.counts()).length === 0 || (await relay.listDeliveries({ status: 'succeeded', limit: 1000 })).data.length === 250,
    );
    const ids = sink.requests.flatMap((r) => {
      const body = JSON.parse(r.body);
      return (Array.isArray(body) ? body : [body]).map((m: { metricid: string }) => m.metricid);
    });
    expect(ids.sort()).toEqual(events.map((e) => e.data.metricid as string).sort());
    expect(sink.requests.length).toBeLessThan(250);
  });
});
