/**
 * Replay and backfill (issue 13 item 2) over HTTP to a real receiver: events published before an endpoint
 * existed or while it was disabled reach it with their original ids, through its subscription and filter;
 * a second identical call queues 0; pages; bad windows, retention and disabled endpoints are refused.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { QueryTypes } from 'sequelize';
import { DEVICES_CATALOGUE } from '../hosts/devices/catalogue.js';
import { createEvent } from '../lib/events.js';
import type { RelayEvent } from '../lib/events.js';
import { buildCatalogue } from '../plugins/webhooks/catalogue.js';
import { replayEndpoint } from '../plugins/webhooks/replay.js';
import { DIALECTS } from './helpers/db.js';
import { startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';
import { webhookFixture } from './helpers/webhooks.js';
import type { WebhookFixture } from './helpers/webhooks.js';

const metric = (deviceid: string, cpu: number): RelayEvent =>
  createEvent({ type: 'metric.submitted', deviceid, data: { metricid: `m-${Math.random()}`, deviceid, cpu_usage: cpu } });
const alert = (deviceid: string): RelayEvent =>
  createEvent({ type: 'alert.submitted', deviceid, data: { alertid: `a-${Math.random()}`, deviceid, level: 'info', alert_type: 'x' } });

describe.each(DIALECTS)('webhook replay (%s)', (dialect) => {
  let f: WebhookFixture | undefined;
  let sink: Sink | undefined;
  afterEach(async () => {
    await f?.cleanup();
    await sink?.close();
    f = sink = undefined;
  });

  const count = async (sql: string, replacements: Record<string, unknown> = {}) => {
    const [r] = await f!.relay.db.sequelize.query<{ n: unknown }>(sql, { replacements, type: QueryTypes.SELECT });
    return Number(r!.n);
  };

  it('backfills a new endpoint through its subscription and filter, with the original event ids, once', async () => {
    sink = await startSink();
    f = await webhookFixture(dialect, { plugin: { catalogue: DEVICES_CATALOGUE } });
    const since = new Date(Date.now() - 1000).toISOString();
    // With no endpoint at all the relay keeps nothing it does not deliver (a host without webhooks pays nothing).
    await f.relay.publish(metric('d0', 99));
    expect(await count('SELECT COUNT(*) AS n FROM relay_events')).toBe(0);
    // Once any endpoint exists, events nobody takes are kept for a later replay.
    await f.api('POST', '/webhooks', { url: `${sink.url}/ops`, events: ['endpoint.*'] });
    const before = [metric('d1', 95), metric('d1', 10), metric('d2', 99), alert('d1')];
    expect(await f.relay.publish(before)).toEqual({ deliveries: 0 });
    expect(await count('SELECT COUNT(*) AS n FROM relay_events')).toBe(4);

    const r = await f.api('POST', '/webhooks', { url: sink.url, events: ['metric.*'], filter: { 'data.cpu_usage': { gte: 90 } } });
    const id = r.body.id as string;
    const replay = await f.api('POST', `/webhooks/${id}/replay`, { since });
    expect(replay.status).toBe(202);
    expect(replay.body).toEqual({ queued: 2 });
    await sink.waitFor(2);
    expect(sink.requests.map((q) => q.headers['webhook-id']).sort()).toEqual([before[0]!.id, before[2]!.id].sort());
    for (const q of sink.requests) expect(q.headers['idempotency-key']).toBe(q.headers['webhook-id']);
    expect(JSON.parse(sink.requests.find((q) => q.headers['webhook-id'] === before[0]!.id)!.body).data).toEqual(before[0]!.data);

    // The same call again: every event in the window already has a delivery to this endpoint.
    expect((await f.api('POST', `/webhooks/${id}/replay`, { since })).body).toEqual({ queued: 0 });
    expect(await count('SELECT COUNT(*) AS n FROM relay_deliveries WHERE endpoint_id = :id', { id })).toBe(2);
    // `types` narrows within the subscription; a window after the events queues nothing.
    expect((await f.api('POST', `/webhooks/${id}/replay`, { since, types: ['alert.submitted'] })).body).toEqual({ queued: 0 });
    expect((await f.api('POST', `/webhooks/${id}/replay`, { since: new Date(Date.now() + 1000).toISOString() })).status).toBe(422);
  });

  it('re-sends what was published while the endpoint was disabled, after it is re-enabled', async () => {
    sink = await startSink();
    f = await webhookFixture(dialect, { plugin: { catalogue: DEVICES_CATALOGUE } });
    const r = await f.api('POST', '/webhooks', { url: sink.url, events: ['*'] });
    const id = r.body.id as string;
    const first = metric('d1', 1);
    await f.relay.publish(first);
    await sink.waitFor(1);
    const since = new Date(Date.now() - 60_000).toISOString();

    await f.api('PATCH', `/webhooks/${id}`, { enabled: false });
    const missed = [metric('d1', 2), alert('d2'), metric('d3', 3)];
    expect(await f.relay.publish(missed)).toEqual({ deliveries: 0 });
    const refused = await f.api('POST', `/webhooks/${id}/replay`, { since });
    expect(refused.status).toBe(409);
    expect(refused.body.detail).toMatch(/disabled/);

    await f.api('PATCH', `/webhooks/${id}`, { enabled: true });
    expect((await f.api('POST', `/webhooks/${id}/replay`, { since })).body).toEqual({ queued: 3 });
    await sink.waitFor(4);
    expect(
      sink.requests
        .slice(1)
        .map((q) => q.headers['webhook-id'])
        .sort(),
    ).toEqual(missed.map((e) => e.id).sort());
    // The event delivered before is not sent twice.
    expect(sink.requests.filter((q) => q.headers['webhook-id'] === first.id)).toHaveLength(1);
    expect((await f.api('POST', `/webhooks/${id}/replay`, { since })).body).toEqual({ queued: 0 });
  });

  it('works in pages: every event of a window larger than a page is queued once', async () => {
    f = await webhookFixture(dialect, { paused: true, plugin: { catalogue: DEVICES_CATALOGUE } });
    await f.api('POST', '/webhooks', { url: 'http://127.0.0.1:9/alerts', events: ['alert.*'] });
    const events = Array.from({ length: 23 }, (_, i) => metric(`d${i % 3}`, i));
    await f.relay.publish(events);
    const endpoint = (await f.api('POST', '/webhooks', { url: 'http://127.0.0.1:9/h', events: ['metric.submitted'] })).body;
    const run = () =>
      replayEndpoint({
        db: f!.relay.db,
        target: 'webhooks',
        maxAttempts: 8,
        catalogue: buildCatalogue(DEVICES_CATALOGUE),
        endpoint,
        window: { since: Date.now() - 60_000 },
        pageSize: 5,
      });
    expect(await run()).toBe(23);
    expect(await run()).toBe(0);
    expect(await count('SELECT COUNT(DISTINCT event_id) AS n FROM relay_deliveries WHERE endpoint_id = :id', { id: endpoint.id })).toBe(23);

    // Two replays of one endpoint at once still queue each event once between them.
    const other = (await f.api('POST', '/webhooks', { url: 'http://127.0.0.1:9/h2', events: ['metric.*'] })).body;
    const both = await Promise.all(
      [0, 1].map(() =>
        f!
          .api('POST', `/webhooks/${other.id}/replay`, { since: new Date(Date.now() - 60_000).toISOString() })
          .then((r) => r.body.queued as number),
      ),
    );
    expect(both[0]! + both[1]!).toBe(23);
    expect(await count('SELECT COUNT(*) AS n FROM relay_deliveries WHERE endpoint_id = :id', { id: other.id })).toBe(23);
  });

  it('refuses bad windows, unknown types, unknown endpoints and windows older than retention', async () => {
    f = await webhookFixture(dialect, { paused: true, plugin: { catalogue: DEVICES_CATALOGUE }, relay: { retentionDays: 7 } });
    const id = (await f.api('POST', '/webhooks', { url: 'http://127.0.0.1:9/h', events: ['*'] })).body.id as string;
    const now = Date.now();
    const cases: Array<[unknown, number, string | undefined]> = [
      [{}, 422, 'since'],
      [{ since: 'yesterday' }, 422, 'since'],
      [{ since: new Date(now - 3600_000).toISOString(), until: new Date(now - 7200_000).toISOString() }, 422, 'until'],
      [{ since: new Date(now - 3600_000).toISOString(), types: ['nope.nope'] }, 422, 'types[0]'],
      [{ since: new Date(now - 8 * 86_400_000).toISOString() }, 422, 'since'],
    ];
    for (const [body, status, path] of cases) {
      const r = await f.api('POST', `/webhooks/${id}/replay`, body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(r.body.errors.map((e: { path: string }) => e.path)).toEqual([path]);
    }
    const old = await f.api('POST', `/webhooks/${id}/replay`, { since: new Date(now - 8 * 86_400_000).toISOString() });
    expect(old.body.detail).toMatch(/RELAY_RETENTION_DAYS=7/);
    expect((await f.api('POST', `/webhooks/wh_NOPE/replay`, { since: new Date(now - 1000).toISOString() })).status).toBe(404);
    expect((await f.api('POST', `/webhooks/${id}/replay`, 'x', { 'content-type': 'text/plain' })).status).toBe(415);
    expect(await count('SELECT COUNT(*) AS n FROM relay_deliveries')).toBe(0);
  });
});
