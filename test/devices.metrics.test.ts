/**
 * `POST /devices/{id}/metrics` with an array body (agents that were offline): every element its own record
 * and event, stored in one transaction and forwarded once each; a bad element or too many refuse the whole
 * request. Also: concurrent ingests through the host share group-commit batches.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { BatchInfo } from '../lib/groupCommit.js';
import { DIALECTS } from './helpers/db.js';
import { eventually } from './helpers/sink.js';
import { expectProblem, snapshotCounts, startDevices } from './devices.fixture.js';
import type { DevicesFixture } from './devices.fixture.js';

type Rec = Record<string, unknown>;

const received = (f: DevicesFixture): Rec[] =>
  f
    .sink!.requests.filter((r) => r.path === '/devices/metrics')
    .flatMap((r) => {
      const body = JSON.parse(r.body) as Rec | Rec[];
      return Array.isArray(body) ? body : [body];
    });

describe.each(DIALECTS)('metrics batches (%s)', (dialect) => {
  let f: DevicesFixture | undefined;
  afterEach(async () => {
    await f?.cleanup();
    f = undefined;
  });

  it('stores an array as one record and one event per element, each forwarded once', async () => {
    f = await startDevices(dialect, { mentor: true });
    const fx = f;
    expect((await f.call('POST', '/devices/register', { deviceid: 'dev-1' })).status).toBe(200);
    const samples = Array.from({ length: 250 }, (_, i) => ({ cpu_usage: i % 100, memory_used: i }));
    const r = await f.call('POST', '/devices/dev-1/metrics', samples);
    expect(r.status, r.text).toBe(200);
    expect(r.json).toEqual({ status: 'ok', inserted: 250 });
    // A single object still answers as before.
    expect((await f.call('POST', '/devices/dev-1/metrics', { cpu_usage: 1, memory_used: 1000 })).json).toEqual({ status: 'ok' });
    expect(await f.count('metrics')).toBe(251);
    expect(await f.count('relay_events', "type = 'metric.submitted'")).toBe(251);
    await eventually(() => received(fx).length >= 251);
    await new Promise((res) => setTimeout(res, 300));
    const got = received(f);
    expect(got).toHaveLength(251);
    expect(new Set(got.map((m) => m.metricid)).size).toBe(251);
    expect(got.map((m) => m.memory_used).sort((a, b) => Number(a) - Number(b))).toEqual([...samples.map((s) => s.memory_used), 1000]);
    const stored = (await f.call('GET', '/devices/dev-1/metrics?limit=1000')).json as Rec[];
    expect(new Set(stored.map((m) => m.metricid))).toEqual(new Set(got.map((m) => m.metricid)));
  });

  it('refuses a bad element by its index, and an array over INGEST_MAX_ITEMS, storing nothing', async () => {
    f = await startDevices(dialect, { mentor: true, env: { INGEST_MAX_ITEMS: '5' } });
    await f.call('POST', '/devices/register', { deviceid: 'dev-1' });
    const before = await snapshotCounts(f);
    const bad = await f.call('POST', '/devices/dev-1/metrics', [{ cpu_usage: 1 }, {}, {}, { cpu_usage: 'hot' }]);
    expectProblem(bad, 422, ['[3].cpu_usage']);
    const tooMany = await f.call(
      'POST',
      '/devices/dev-1/metrics',
      Array.from({ length: 6 }, () => ({ cpu_usage: 1 })),
    );
    expectProblem(tooMany, 422, ['(body)']);
    expect(tooMany.json.errors[0].message).toContain('INGEST_MAX_ITEMS');
    expect(await snapshotCounts(f)).toEqual(before);
    expect(
      (
        await f.call(
          'POST',
          '/devices/dev-1/metrics',
          Array.from({ length: 5 }, () => ({ cpu_usage: 1 })),
        )
      ).json,
    ).toEqual({ status: 'ok', inserted: 5 });
  });

  it('shares commits between concurrent requests, and a 404 among them fails only itself', async () => {
    f = await startDevices(dialect);
    await f.call('POST', '/devices/register', { deviceid: 'dev-1' });
    const batches: BatchInfo[] = [];
    f.host.relay.events.on('commit:batch', (b) => batches.push(b));
    const calls = Array.from({ length: 40 }, (_, i) =>
      f!.call('POST', `/devices/${i === 7 ? 'ghost' : 'dev-1'}/metrics`, { cpu_usage: i }),
    );
    const statuses = (await Promise.all(calls)).map((r) => r.status);
    expect(statuses.filter((s) => s === 200)).toHaveLength(39);
    expect(statuses[7]).toBe(404);
    expect(await f.count('metrics')).toBe(39);
    expect(batches.reduce((n, b) => n + b.callers, 0)).toBe(39);
  });
});
