import { afterEach, describe, expect, it } from 'vitest';
import { createEvent } from '../lib/events.js';
import { mentorTarget } from '../plugins/mentor.js';
import { DIALECTS } from './helpers/db.js';
import { metricEvent } from './helpers/relay.js';
import { eventually, startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';
import { register, webhookFixture } from './helpers/webhooks.js';
import type { WebhookFixture } from './helpers/webhooks.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ids = (r: { body: { data: Array<{ id: number }> } }) => r.body.data.map((d) => d.id);
const event = (type: string, deviceid: string) => createEvent({ type, deviceid, data: { deviceid } });

describe.each(DIALECTS)('management API: deliveries (%s)', (dialect) => {
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

  it('filters by status, target, webhook_id, event_type, deviceid and time window', async () => {
    f = await webhookFixture(dialect, { paused: true, targets: [mentorTarget({ url: 'http://127.0.0.1:9' })] });
    const a = await register(f, 'http://127.0.0.1:9/a', ['*']);
    const b = await register(f, 'http://127.0.0.1:9/b', ['alert.*']);
    await f.relay.publish([event('metric.submitted', 'dev-1'), event('alert.submitted', 'dev-2')]);
    const between = Date.now();
    await sleep(30);
    await f.relay.publish(event('device.registered', 'dev-1'));
    const count = async (query: string) => {
      const r = await f.api('GET', `/deliveries?${query}`);
      expect(r.status, query).toBe(200);
      return r.body.data.length as number;
    };
    expect(await count('')).toBe(7);
    expect(await count('target=webhooks')).toBe(4);
    expect(await count('target=mentor')).toBe(3);
    expect(await count(`webhook_id=${a.id}`)).toBe(3);
    expect(await count(`webhook_id=${b.id}`)).toBe(1);
    expect(await count('event_type=alert.submitted')).toBe(3);
    expect(await count('deviceid=dev-1')).toBe(4);
    expect(await count('status=pending')).toBe(7);
    expect(await count('status=dead')).toBe(0);
    const mid = new Date(between + 15).toISOString();
    expect(await count(`since=${mid}`)).toBe(2);
    expect(await count(`until=${mid}`)).toBe(5);
    expect(await count(`target=webhooks&deviceid=dev-1&event_type=metric.submitted`)).toBe(1);
    const one = (await f.api('GET', `/deliveries?webhook_id=${b.id}`)).body.data[0];
    expect(one).toMatchObject({
      target: 'webhooks',
      webhook_id: b.id,
      event_type: 'alert.submitted',
      deviceid: 'dev-2',
      status: 'pending',
      attempts: 0,
    });
  });

  it('paginates newest first with a cursor that stays stable while new deliveries are written', async () => {
    f = await webhookFixture(dialect, { paused: true });
    await register(f, 'http://127.0.0.1:9/', ['*']);
    for (let i = 0; i < 5; i++) await f.relay.publish(metricEvent());
    const all = ids(await f.api('GET', '/deliveries'));
    expect(all).toEqual([...all].sort((x, y) => y - x));
    const first = await f.api('GET', '/deliveries?limit=2');
    expect(ids(first)).toEqual(all.slice(0, 2));
    for (let i = 0; i < 3; i++) await f.relay.publish(metricEvent());
    const second = await f.api('GET', `/deliveries?limit=2&cursor=${first.body.next_cursor}`);
    expect(ids(second)).toEqual(all.slice(2, 4));
    const third = await f.api('GET', `/deliveries?limit=2&cursor=${second.body.next_cursor}`);
    expect(ids(third)).toEqual(all.slice(4));
    expect(third.body.next_cursor).toBeNull();
    expect((await f.api('GET', '/deliveries')).body.data).toHaveLength(8);
  });

  it('records every attempt in order with status code, error and the first 4 KiB of the response', async () => {
    f = await webhookFixture(dialect);
    const s = await sink();
    const big = 'x'.repeat(10_000);
    s.respond((_req, i) => (i < 2 ? { status: 500, body: big } : { status: 200, body: 'thanks' }));
    const { id: webhookId } = await register(f, s.url);
    const e = metricEvent('dev-att');
    await f.relay.publish(e);
    const [listed] = (
      await eventually(async () => {
        const r = await f.relay.listDeliveries({ webhookId, status: 'succeeded' });
        return r.data.length ? r : null;
      })
    ).data;
    const r = await f.api('GET', `/deliveries/${listed!.id}`);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      id: listed!.id,
      status: 'succeeded',
      attempts: 3,
      webhook_id: webhookId,
      event_id: e.id,
      last_status_code: 200,
    });
    expect(r.body.event).toMatchObject({ id: e.id, type: 'metric.submitted', data: e.data });
    const log = r.body.attempts_log as Array<{
      number: number;
      started_at: string;
      duration_ms: number;
      status_code: number;
      outcome: string;
      error: string | null;
      response_body: string;
    }>;
    expect(log.map((a) => [a.number, a.status_code, a.outcome, a.error])).toEqual([
      [1, 500, 'retry', 'HTTP 500'],
      [2, 500, 'retry', 'HTTP 500'],
      [3, 200, 'success', null],
    ]);
    expect(log[0]!.response_body).toBe(big.slice(0, 4096));
    expect(log[2]!.response_body).toBe('thanks');
    for (let i = 1; i < log.length; i++) expect(Date.parse(log[i]!.started_at)).toBeGreaterThanOrEqual(Date.parse(log[i - 1]!.started_at));
    expect(log.every((a) => a.duration_ms >= 0)).toBe(true);
  });

  it('retries one dead delivery; refuses while it is in flight; 404 for unknown ids', async () => {
    f = await webhookFixture(dialect, { plugin: { schedule: [], circuit: { failureThreshold: 100 } } });
    const s = await sink();
    s.respond(() => ({ status: 500 }));
    const { id: webhookId } = await register(f, s.url);
    await f.relay.publish(metricEvent());
    const [dead] = (
      await eventually(async () => {
        const r = await f.relay.listDeliveries({ webhookId, status: 'dead' });
        return r.data.length ? r : null;
      })
    ).data;
    s.respond(() => 'hang');
    const retried = await f.api('POST', `/deliveries/${dead!.id}/retry`);
    expect(retried.status).toBe(202);
    expect(retried.body).toEqual({ id: dead!.id, status: 'pending' });
    await s.waitFor(2);
    await eventually(async () => (await f.relay.getDelivery(dead!.id))?.status === 'inflight');
    const busy = await f.api('POST', `/deliveries/${dead!.id}/retry`);
    expect(busy.status).toBe(409);
    expect(busy.body.detail).toMatch(/being sent/);
    expect((await f.api('POST', '/deliveries/999999/retry')).status).toBe(404);
    expect((await f.api('POST', '/deliveries/abc/retry')).status).toBe(404);
    expect((await f.api('GET', '/deliveries/999999')).status).toBe(404);
    expect((await f.api('GET', '/deliveries/1.5')).status).toBe(404);
  });

  it('recovers the dead deliveries of a window, optionally of one endpoint', async () => {
    f = await webhookFixture(dialect, { plugin: { schedule: [], circuit: { failureThreshold: 100 } } });
    const s = await sink();
    s.respond(() => ({ status: 500 }));
    const a = await register(f, `${s.url}/a`);
    const b = await register(f, `${s.url}/b`);
    const deadCount = async () => (await f.relay.listDeliveries({ status: 'dead' })).data.length;
    await f.relay.publish([metricEvent(), metricEvent()]);
    await eventually(async () => (await deadCount()) === 4);
    const between = new Date(Date.now() + 10).toISOString();
    await sleep(30);
    await f.relay.publish([metricEvent(), metricEvent()]);
    await eventually(async () => (await deadCount()) === 8);
    s.respond(() => ({ status: 200 }));

    const one = await f.api('POST', '/deliveries/recover', { since: between, webhook_id: a.id });
    expect(one.body).toEqual({ requeued: 2 });
    await eventually(async () => (await f.relay.listDeliveries({ webhookId: a.id, status: 'succeeded' })).data.length === 2);
    expect((await f.api('POST', '/deliveries/recover', { since: between, target: 'mentor' })).body).toEqual({ requeued: 0 });
    const early = await f.api('POST', '/deliveries/recover', { since: '2000-01-01T00:00:00Z', until: between });
    expect(early.body).toEqual({ requeued: 4 });
    await eventually(async () => (await deadCount()) === 2);
    expect((await f.relay.listDeliveries({ status: 'dead' })).data.every((d) => d.webhook_id === b.id)).toBe(true);

    expect((await f.api('POST', '/deliveries/recover', {})).status).toBe(422);
    expect((await f.api('POST', '/deliveries/recover', { since: between, until: between })).status).toBe(422);
  });

  it('rejects bad query parameters with 422 naming them', async () => {
    f = await webhookFixture(dialect, { paused: true });
    for (const [query, path] of [
      ['status=lost', 'status'],
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['limit=ten', 'limit'],
      ['cursor=not-a-cursor', 'cursor'],
      ['since=yesterday', 'since'],
      ['since=2025-02-01T00:00:00Z&until=2025-01-01T00:00:00Z', 'until'],
      ['status=dead&status=pending', 'status'],
    ]) {
      const r = await f.api('GET', `/deliveries?${query}`);
      expect(r.status, query).toBe(422);
      expect(
        r.body.errors.map((e: { path: string }) => e.path),
        query,
      ).toContain(path);
    }
  });

  it('reconciles through the wired republish function, and answers 503 without one', async () => {
    f = await webhookFixture(dialect, { paused: true });
    expect((await f.api('POST', '/reconcile')).status).toBe(503);
    await f.cleanup();
    const calls: Array<{ since?: Date; types?: string[] }> = [];
    f = await webhookFixture(dialect, { paused: true, router: { republish: async (o) => (calls.push(o), 7) } });
    const r = await f.api('POST', '/reconcile', { since: '2025-01-01T00:00:00Z', types: ['metric.submitted'] });
    expect(r.body).toEqual({ republished: 7 });
    expect(calls[0]!.since?.toISOString()).toBe('2025-01-01T00:00:00.000Z');
    expect(calls[0]!.types).toEqual(['metric.submitted']);
    expect((await f.api('POST', '/reconcile')).body).toEqual({ republished: 7 });
    expect(calls[1]).toEqual({ since: undefined, types: undefined });
    expect((await f.api('POST', '/reconcile', { types: 'metric.submitted' })).status).toBe(422);
  });
});
