/** The dashboards' read API: newest first, bounded limits, 404 for unknown devices, problem+json for bad queries. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DIALECTS } from './helpers/db.js';
import { fixtures, startMentorFixture } from './helpers/mentor.js';
import type { MentorFixture } from './helpers/mentor.js';

const at = (s: number) => new Date(Date.UTC(2025, 5, 1, 8, 0, s)).toISOString();

describe.each(DIALECTS)('mentor read API (%s)', (dialect) => {
  let m: MentorFixture;
  beforeEach(async () => {
    m = await startMentorFixture(dialect);
  });
  afterEach(async () => {
    await m.close();
  });

  it('lists records newest first and honours limit', async () => {
    await m.post('/devices/register', fixtures.registration('dev-1'));
    // Sent out of order on purpose: the order comes from the record time, not the arrival.
    const seconds = [5, 1, 9, 3, 7];
    await m.post(
      '/devices/metrics',
      seconds.map((s) => fixtures.metric('dev-1', { timestamp: at(s) })),
    );
    const all = (await m.get('/devices/dev-1/metrics')).body as Array<{ timestamp: string }>;
    expect(all.map((r) => r.timestamp)).toEqual([9, 7, 5, 3, 1].map(at));
    const two = (await m.get('/devices/dev-1/metrics?limit=2')).body as Array<{ timestamp: string }>;
    expect(two.map((r) => r.timestamp)).toEqual([at(9), at(7)]);
  });

  it('refuses a limit outside 1..1000 naming the parameter', async () => {
    for (const limit of ['0', '1001', 'abc', '2.5']) {
      const r = await m.get(`/devices/dev-1/alerts?limit=${limit}`);
      expect(r.status).toBe(422);
      expect(r.contentType).toContain('application/problem+json');
      expect(r.body.errors).toEqual([expect.objectContaining({ path: 'limit' })]);
    }
    expect((await m.get('/devices?limit=1000')).status).toBe(200);
  });

  it('answers 404 for an unknown or impossible device id', async () => {
    for (const id of ['missing', '%20bad%20id']) {
      const r = await m.get(`/devices/${id}`);
      expect(r.status).toBe(404);
      expect(r.contentType).toContain('application/problem+json');
    }
    expect((await m.get('/no/such/route')).status).toBe(404);
  });

  it('lists devices and the activity feed across devices', async () => {
    await m.post('/devices/register', fixtures.registration('dev-a', { last_seen: at(1) }));
    await m.post('/devices/register', fixtures.registration('dev-b', { last_seen: at(2) }));
    const devices = (await m.get('/devices')).body as Array<Record<string, unknown>>;
    expect(devices.map((d) => d.deviceid)).toEqual(['dev-b', 'dev-a']);
    expect(devices[0]).toMatchObject({ device_name: 'Test Device', is_online: true, last_seen: at(2) });

    await m.post('/devices/activity', [
      fixtures.activity('dev-a', { timestamp: at(10) }),
      fixtures.activity('dev-b', { timestamp: at(20) }),
    ]);
    const feed = (await m.get('/activities')).body as Array<{ deviceid: string }>;
    expect(feed.map((a) => a.deviceid)).toEqual(['dev-b', 'dev-a']);
    const one = (await m.get('/activities?deviceid=dev-a')).body as Array<{ deviceid: string }>;
    expect(one.map((a) => a.deviceid)).toEqual(['dev-a']);
  });

  it('describes its routes in /openapi.json', async () => {
    const doc = (await m.get('/openapi.json')).body as { openapi: string; paths: Record<string, Record<string, unknown>> };
    expect(doc.openapi).toBe('3.1.0');
    for (const p of ['/devices/register', '/devices/metrics', '/devices/processes', '/commands/status', '/devices/{id}/commands']) {
      expect(doc.paths[p]?.post).toBeDefined();
    }
    for (const p of ['/devices', '/devices/{id}', '/devices/{id}/metrics', '/activities', '/health/ready'])
      expect(doc.paths[p]?.get).toBeDefined();
  });
});
