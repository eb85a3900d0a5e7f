/**
 * Endpoint filters (issue 13 item 1): the matcher's semantics as known-answer vectors, registration checks
 * against the devices host's catalogue (422 naming the field, nothing stored), and filtering at publish over
 * HTTP to real receivers: a non-matching event gets no delivery row.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DEVICES_CATALOGUE } from '../hosts/devices/catalogue.js';
import { createEvent } from '../lib/events.js';
import type { RelayEvent } from '../lib/events.js';
import { buildCatalogue } from '../plugins/webhooks/catalogue.js';
import { compileFilter, compileFilterSet, filterProblems } from '../plugins/webhooks/filter.js';
import type { EventFilter } from '../plugins/webhooks/filter.js';
import { DIALECTS } from './helpers/db.js';
import { eventually, startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';
import { webhookFixture } from './helpers/webhooks.js';
import type { WebhookFixture } from './helpers/webhooks.js';

const catalogue = buildCatalogue(DEVICES_CATALOGUE);

const metric = (deviceid: string, data: Record<string, unknown>): RelayEvent =>
  createEvent({ type: 'metric.submitted', deviceid, data: { metricid: `m-${Math.random()}`, deviceid, ...data } });
const alert = (deviceid: string, level: string, extra: Record<string, unknown> = {}): RelayEvent =>
  createEvent({ type: 'alert.submitted', deviceid, data: { alertid: `a-${Math.random()}`, deviceid, level, alert_type: 'cpu', ...extra } });

describe('compileFilter', () => {
  const cases: Array<[string, EventFilter, RelayEvent, boolean]> = [
    ['a scalar is equal', { deviceid: 'd1' }, metric('d1', {}), true],
    ['a scalar is equal (miss)', { deviceid: 'd1' }, metric('d2', {}), false],
    ['type can be filtered', { type: 'alert.submitted' }, metric('d1', {}), false],
    ['an array is any of', { 'data.level': ['critical', 'warning'] }, alert('d1', 'warning'), true],
    ['an array is any of (miss)', { 'data.level': ['critical', 'warning'] }, alert('d1', 'info'), false],
    ['gte', { 'data.cpu_usage': { gte: 90 } }, metric('d1', { cpu_usage: 90 }), true],
    ['gte (miss)', { 'data.cpu_usage': { gte: 90 } }, metric('d1', { cpu_usage: 89.9 }), false],
    ['gt is strict', { 'data.cpu_usage': { gt: 90 } }, metric('d1', { cpu_usage: 90 }), false],
    ['lt and gt together', { 'data.cpu_usage': { gt: 10, lt: 20 } }, metric('d1', { cpu_usage: 15 }), true],
    ['lte against null does not match', { 'data.cpu_usage': { lte: 50 } }, metric('d1', { cpu_usage: null }), false],
    ['ne matches a missing field', { 'data.cpu_temp': { ne: 3 } }, metric('d1', {}), true],
    ['eq does not match a missing field', { 'data.cpu_temp': { eq: 3 } }, metric('d1', {}), false],
    ['in', { deviceid: { in: ['a', 'b'] } }, metric('b', {}), true],
    ['nin', { deviceid: { nin: ['a', 'b'] } }, metric('b', {}), false],
    ['exists: true needs a non-null value', { 'data.cpu_temp': { exists: true } }, metric('d1', { cpu_temp: null }), false],
    ['exists: false matches null', { 'data.cpu_temp': { exists: false } }, metric('d1', { cpu_temp: null }), true],
    ['prefix', { deviceid: { prefix: 'lab-' } }, metric('lab-7', {}), true],
    ['prefix (miss)', { deviceid: { prefix: 'lab-' } }, metric('office-7', {}), false],
    ['a number is not equal to its string', { 'data.cpu_usage': 90 }, metric('d1', { cpu_usage: '90' }), false],
    ['every key must match', { deviceid: 'd1', 'data.cpu_usage': { gte: 90 } }, metric('d1', { cpu_usage: 50 }), false],
    ['no inherited properties', { 'data.toString': { exists: true } }, metric('d1', {}), false],
  ];
  it.each(cases)('%s', (_name, filter, event, expected) => {
    expect(compileFilter(filter)(event)).toBe(expected);
  });
});

describe('compileFilterSet', () => {
  it('answers, for each event, exactly the keys whose own filter takes it (paths shared between filters)', () => {
    const set = compileFilterSet<string>([
      { key: 'hot', filter: { 'data.cpu_usage': { gte: 90 } } },
      { key: 'cold', filter: { 'data.cpu_usage': { lt: 10 } } },
      { key: 'd1-hot', filter: { deviceid: 'd1', 'data.cpu_usage': { gte: 90 } } },
      { key: 'no-temp', filter: { 'data.cpu_temp': { exists: false } } },
    ]);
    expect(set.match(metric('d1', { cpu_usage: 95 }))).toEqual(['hot', 'd1-hot', 'no-temp']);
    expect(set.match(metric('d2', { cpu_usage: 95, cpu_temp: 70 }))).toEqual(['hot']);
    expect(set.match(metric('d1', { cpu_usage: 5, cpu_temp: 70 }))).toEqual(['cold']);
    expect(set.match(metric('d1', { cpu_usage: 50, cpu_temp: 70 }))).toEqual([]);
  });
});

describe('filterProblems against the catalogue', () => {
  const paths = (filter: unknown, events: string[]) => filterProblems(filter, events, catalogue).map((i) => i.path);
  it('accepts fields of a subscribed type, with values of the field type', () => {
    expect(paths({ 'data.cpu_usage': { gte: 90 }, deviceid: ['a', 'b'], type: 'metric.submitted' }, ['metric.*'])).toEqual([]);
    expect(paths({ 'data.level': ['critical'], 'data.cpu_usage': { exists: true } }, ['*'])).toEqual([]);
    expect(paths({ 'data.processes': { exists: true } }, ['process.snapshot'])).toEqual([]);
    expect(paths(null, ['*'])).toEqual([]);
  });
  it('names each unusable path, operator and value', () => {
    expect(paths({ 'data.cpu': 1 }, ['metric.*'])).toEqual(['filter.data.cpu']);
    expect(paths({ 'data.level': 'critical' }, ['metric.submitted'])).toEqual(['filter.data.level']);
    expect(paths({ foo: 1 }, ['*'])).toEqual(['filter.foo']);
    expect(paths({ 'data.cpu_usage': { between: [1, 2] } }, ['*'])).toEqual(['filter.data.cpu_usage.between']);
    expect(paths({ 'data.cpu_usage': { gte: '90' } }, ['*'])).toEqual(['filter.data.cpu_usage.gte']);
    expect(paths({ 'data.cpu_usage': 'high' }, ['*'])).toEqual(['filter.data.cpu_usage']);
    expect(paths({ 'data.cpu_usage': [1, 'x'] }, ['*'])).toEqual(['filter.data.cpu_usage[1]']);
    expect(paths({ 'data.level': { exists: 'yes' } }, ['*'])).toEqual(['filter.data.level.exists']);
    expect(paths({ 'data.level': { prefix: 3 } }, ['*'])).toEqual(['filter.data.level.prefix']);
    expect(paths({ 'data.level': {} }, ['*'])).toEqual(['filter.data.level']);
    expect(paths({ 'data.processes': 'x' }, ['*'])).toEqual(['filter.data.processes']);
    expect(paths({ 'data.__proto__': 1 }, ['*'])).toEqual(['filter.data.__proto__']);
    expect(paths([1], ['*'])).toEqual(['filter']);
  });
  it('knows operational events only where they are named, as they are routed ("*" does not take them)', () => {
    expect(paths({ 'data.reason': { prefix: 'answered' } }, ['endpoint.*'])).toEqual([]);
    expect(paths({ 'data.reason': { prefix: 'answered' } }, ['*'])).toEqual(['filter.data.reason']);
    expect(paths({ 'data.webhook_id': 'wh_1' }, ['*'])).toEqual(['filter.data.webhook_id']);
  });
});

describe.each(DIALECTS)('endpoint filters over HTTP (%s)', (dialect) => {
  let f: WebhookFixture | undefined;
  let sink: Sink | undefined;
  afterEach(async () => {
    await f?.cleanup();
    await sink?.close();
    f = sink = undefined;
  });

  it('refuses an unusable filter with 422 naming the field, and stores nothing', async () => {
    f = await webhookFixture(dialect, { paused: true, plugin: { catalogue: DEVICES_CATALOGUE } });
    const post = (filter: unknown, events = ['metric.*']) => f!.api('POST', '/webhooks', { url: 'http://127.0.0.1:9/h', events, filter });
    const refused: Array<[unknown, string[], string]> = [
      [{ 'data.cpu': { gte: 90 } }, ['metric.*'], 'filter.data.cpu'],
      [{ 'data.cpu_usage': { around: 90 } }, ['metric.*'], 'filter.data.cpu_usage.around'],
      [{ 'data.cpu_usage': { gte: 'ninety' } }, ['metric.*'], 'filter.data.cpu_usage.gte'],
      [{ 'data.level': 'critical' }, ['metric.*'], 'filter.data.level'],
      [{ region: 'eu' }, ['*'], 'filter.region'],
      ['deviceid=d1', ['*'], 'filter'],
    ];
    for (const [filter, events, path] of refused) {
      const r = await post(filter, events);
      expect(r.status, JSON.stringify(filter)).toBe(422);
      expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(r.body.errors.map((e: { path: string }) => e.path)).toEqual([path]);
    }
    expect((await f.api('GET', '/webhooks')).body.data).toEqual([]);

    const ok = await post({ deviceid: 'd1', 'data.cpu_usage': { gte: 90 } });
    expect(ok.status).toBe(201);
    expect(ok.body.filter).toEqual({ deviceid: 'd1', 'data.cpu_usage': { gte: 90 } });
    const id = ok.body.id as string;
    // Narrowing the subscription must keep the filter usable: alerts have no cpu_usage.
    const narrowed = await f.api('PATCH', `/webhooks/${id}`, { events: ['alert.submitted'] });
    expect(narrowed.status).toBe(422);
    expect(narrowed.body.errors.map((e: { path: string }) => e.path)).toEqual(['filter.data.cpu_usage']);
    const bad = await f.api('PATCH', `/webhooks/${id}`, { filter: { 'data.cpu_usage': { gte: true } } });
    expect(bad.status).toBe(422);
    expect((await f.api('GET', `/webhooks/${id}`)).body).toMatchObject({ events: ['metric.*'], filter: { deviceid: 'd1' } });
    // Both in one change is fine; null removes the filter.
    expect((await f.api('PATCH', `/webhooks/${id}`, { events: ['alert.*'], filter: { 'data.level': ['critical'] } })).status).toBe(200);
    const cleared = await f.api('PATCH', `/webhooks/${id}`, { filter: null });
    expect(cleared.body.filter).toBeNull();
  });

  it('delivers only matching events; a non-matching event gets no delivery row', async () => {
    sink = await startSink();
    f = await webhookFixture(dialect, { plugin: { catalogue: DEVICES_CATALOGUE } });
    const hot = await f.api('POST', '/webhooks', {
      url: `${sink.url}/hot`,
      events: ['metric.*'],
      filter: { deviceid: 'd1', 'data.cpu_usage': { gte: 90 } },
    });
    const severe = await f.api('POST', '/webhooks', {
      url: `${sink.url}/severe`,
      events: ['alert.submitted'],
      filter: { 'data.level': ['critical', 'warning'] },
    });
    const all = await f.api('POST', '/webhooks', { url: `${sink.url}/all`, events: ['*'] });
    expect([hot.status, severe.status, all.status]).toEqual([201, 201, 201]);
    const events = [
      metric('d1', { cpu_usage: 95 }), // hot
      metric('d1', { cpu_usage: 40 }),
      metric('d2', { cpu_usage: 99 }),
      metric('d1', { cpu_usage: null }),
      alert('d1', 'critical'), // severe
      alert('d2', 'info'),
      alert('d3', 'warning'), // severe
    ];
    expect(await f.relay.publish(events)).toEqual({ deliveries: 7 + 3 });
    await sink.waitFor(10);
    const got = (path: string) =>
      sink!.requests
        .filter((r) => r.path === path)
        .map((r) => r.headers['webhook-id'])
        .sort();
    expect(got('/hot')).toEqual([events[0]!.id]);
    expect(got('/severe')).toEqual([events[4]!.id, events[6]!.id].sort());
    expect(got('/all')).toHaveLength(7);
    const rows = await f.relay.db.sequelize.query<{ endpoint_id: string; n: unknown }>(
      'SELECT endpoint_id, COUNT(*) AS n FROM relay_deliveries GROUP BY endpoint_id',
      { type: 'SELECT' as never },
    );
    const counts = Object.fromEntries(rows.map((r) => [r.endpoint_id, Number(r.n)]));
    expect(counts).toEqual({ [hot.body.id]: 1, [severe.body.id]: 2, [all.body.id]: 7 });

    // A filter change applies to the next publish at once.
    await f.api('PATCH', `/webhooks/${hot.body.id}`, { filter: { deviceid: 'd2' } });
    await f.relay.publish(metric('d2', { cpu_usage: 1 }));
    await eventually(async () => got('/hot').length === 2);
  });
});
