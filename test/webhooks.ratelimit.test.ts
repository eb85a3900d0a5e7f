/**
 * `rate_limit` over HTTP with a real receiver: the dispatcher holds deliveries back without spending
 * attempts, every delivery arrives exactly once, and a 429 with `Retry-After` still decides when that
 * delivery is retried. The assertions on time are lower bounds the limiter guarantees (never upper bounds).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DIALECTS } from './helpers/db.js';
import { metricEvent } from './helpers/relay.js';
import { eventually, startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';
import { webhookFixture } from './helpers/webhooks.js';
import type { WebhookFixture } from './helpers/webhooks.js';

describe.each(DIALECTS)('webhook rate limits (%s)', (dialect) => {
  let f: WebhookFixture;
  const sinks: Sink[] = [];
  const sink = async () => {
    const s = await startSink();
    sinks.push(s);
    return s;
  };
  afterEach(async () => {
    await f?.cleanup();
    await Promise.all(sinks.splice(0).map((s) => s.close()));
  });

  it('50 deliveries to an endpoint limited to 10/s take at least 4 s, all arrive once, no attempt is spent waiting', async () => {
    f = await webhookFixture(dialect);
    const [limited, free] = [await sink(), await sink()];
    const created = await f.api('POST', '/webhooks', { url: limited.url, events: ['metric.*'], rate_limit: 10 });
    expect(created.status).toBe(201);
    expect(created.body.rate_limit).toBe(10);
    await f.api('POST', '/webhooks', { url: free.url, events: ['metric.*'] });

    const events = Array.from({ length: 50 }, () => metricEvent('dev-rl'));
    const started = Date.now();
    await f.relay.publish(events);
    // The unlimited endpoint is not slowed by its neighbour.
    await free.waitFor(50, 20_000);
    expect(limited.requests.length).toBeLessThan(50);
    await limited.waitFor(50, 30_000);
    // 50 requests at most 10 per second: 49 gaps of at least 100 ms.
    expect(limited.requests[49]!.at - started).toBeGreaterThanOrEqual(4_000);
    await eventually(async () => (await f.relay.listDeliveries({ status: 'succeeded', limit: 200 })).data.length === 100);
    const ids = limited.requests.map((r) => r.headers['webhook-id']);
    expect(new Set(ids).size).toBe(50);
    expect(new Set(ids)).toEqual(new Set(events.map((e) => e.id)));
    const deliveries = (await f.relay.listDeliveries({ webhookId: created.body.id, limit: 200 })).data;
    expect(deliveries).toHaveLength(50);
    expect(deliveries.every((d) => d.attempts === 1)).toBe(true);
  });

  it('a 429 with Retry-After still decides when that delivery is retried', async () => {
    f = await webhookFixture(dialect);
    const s = await sink();
    s.respond((_req, i) => (i === 0 ? { status: 429, headers: { 'retry-after': '2' } } : { status: 204 }));
    const created = await f.api('POST', '/webhooks', { url: s.url, events: ['*'], rate_limit: 100 });
    const event = metricEvent();
    await f.relay.publish(event);
    await s.waitFor(2, 20_000);
    expect(s.requests.map((r) => r.headers['webhook-id'])).toEqual([event.id, event.id]);
    // The schedule's 50 ms (the FAST fixture) and the limit's 10 ms both lose to the receiver's 2 s.
    expect(s.requests[1]!.at - s.requests[0]!.at).toBeGreaterThanOrEqual(1_900);
    await eventually(async () => (await f.relay.listDeliveries({ webhookId: created.body.id })).data[0]?.status === 'succeeded');
    expect((await f.relay.listDeliveries({ webhookId: created.body.id })).data[0]!.attempts).toBe(2);
  });

  it('PATCH sets and removes the limit; bad values are a 422 naming rate_limit', async () => {
    f = await webhookFixture(dialect, { paused: true });
    const created = await f.api('POST', '/webhooks', { url: 'http://127.0.0.1:9/', events: ['*'] });
    expect(created.body.rate_limit).toBeNull();
    const id = created.body.id as string;
    expect((await f.api('PATCH', `/webhooks/${id}`, { rate_limit: 25 })).body.rate_limit).toBe(25);
    expect((await f.api('GET', `/webhooks/${id}`)).body.rate_limit).toBe(25);
    for (const [value, message] of [
      [0, /at least 1/],
      [-3, /at least 1/],
      [1.5, /whole number/],
      ['10', /whole number of requests per second/],
      [10_001, /at most 10000/],
    ] as const) {
      const r = await f.api('PATCH', `/webhooks/${id}`, { rate_limit: value });
      expect(r.status, String(value)).toBe(422);
      expect(r.body.errors).toEqual([expect.objectContaining({ path: 'rate_limit', message: expect.stringMatching(message) })]);
    }
    expect((await f.api('GET', `/webhooks/${id}`)).body.rate_limit).toBe(25);
    expect((await f.api('PATCH', `/webhooks/${id}`, { rate_limit: null })).body.rate_limit).toBeNull();
  });
});
