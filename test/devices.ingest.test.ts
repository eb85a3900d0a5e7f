/** Happy paths of every devices-host route, on SQLite and PostgreSQL, against a real server. */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DIALECTS } from './helpers/db.js';
import { imageForm, JPEG, PNG, startDevices, WEBP } from './devices.fixture.js';
import type { DevicesFixture } from './devices.fixture.js';
import { KnownDevices } from '../hosts/devices/store/ingest.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

describe.each(DIALECTS)('devices host routes (%s)', (dialect) => {
  let f: DevicesFixture;
  beforeEach(async () => {
    f = await startDevices(dialect, { mentor: true });
  });
  afterEach(async () => {
    await f.cleanup();
  });

  const register = (body: Record<string, unknown>) => f.call('POST', '/devices/register', body);
  const eventTypes = async () => (await f.rows('SELECT event_type FROM relay_deliveries ORDER BY id')).map((r) => r.event_type);

  it('registers a device, then updates it keeping omitted fields', async () => {
    const first = await register({ deviceid: 'dev-1', device_name: 'Laptop', os: 'linux', surprise: 'ignored' });
    expect(first.status).toBe(200);
    expect(first.json).toEqual({ deviceid: 'dev-1', created: true, updated: null });
    const again = await register({ deviceid: 'dev-1', current_user: 'amal', device_name: null });
    expect(again.json).toEqual({ deviceid: 'dev-1', created: null, updated: true });
    const device = await f.call('GET', '/devices/dev-1');
    expect(device.json).toMatchObject({ deviceid: 'dev-1', device_name: 'Laptop', os: 'linux', current_user: 'amal', is_online: true });
    expect(Date.parse(device.json.last_seen)).toBeGreaterThan(0);
    expect(device.json).not.toHaveProperty('surprise');
    const list = await f.call('GET', '/devices');
    expect(list.json.map((d: { deviceid: string }) => d.deviceid)).toEqual(['dev-1']);
    expect(await eventTypes()).toEqual(['device.registered', 'device.registered']);
  });

  it('lower-cases UUID device ids', async () => {
    const id = 'AB5F0C2E-1D2B-4C3D-9E8F-0123456789AB';
    expect((await register({ deviceid: id })).json.deviceid).toBe(id.toLowerCase());
    expect((await f.call('GET', `/devices/${id}`)).json.deviceid).toBe(id.toLowerCase());
    expect((await f.call('POST', `/devices/${id}/metrics`, { cpu_usage: 1 })).status).toBe(200);
  });

  it('answers 404 for an unknown device every time, then stores once it is registered (the device cache remembers only existing devices)', async () => {
    for (let i = 0; i < 3; i++) expect((await f.call('POST', '/devices/dev-late/metrics', { cpu_usage: i })).status).toBe(404);
    expect(await f.rows("SELECT metricid FROM metrics WHERE deviceid = 'dev-late'")).toEqual([]);
    await register({ deviceid: 'dev-late' });
    for (let i = 0; i < 3; i++) expect((await f.call('POST', '/devices/dev-late/metrics', { cpu_usage: i })).status).toBe(200);
    expect(await f.rows("SELECT metricid FROM metrics WHERE deviceid = 'dev-late'")).toHaveLength(3);
  });

  it('stores metrics and lists them newest first with a limit', async () => {
    await register({ deviceid: 'dev-1' });
    for (const cpu of [10, 20, 30]) {
      const r = await f.call('POST', '/devices/dev-1/metrics', {
        cpu_usage: cpu,
        cpu_temp: -5.5,
        memory_total: 8_000_000_000,
        net_bytes_in: 0,
      });
      expect(r.status).toBe(200);
      expect(r.json).toEqual({ status: 'ok' });
    }
    const two = await f.call('GET', '/devices/dev-1/metrics?limit=2');
    expect(two.json.map((m: { cpu_usage: number }) => m.cpu_usage)).toEqual([30, 20]);
    expect(two.json[0]).toMatchObject({ deviceid: 'dev-1', cpu_temp: -5.5, memory_total: 8_000_000_000, net_bytes_in: 0, swap_used: null });
    expect(two.json[0].metricid).toMatch(UUID);
    expect(await eventTypes()).toEqual(['device.registered', 'metric.submitted', 'metric.submitted', 'metric.submitted']);
  });

  it('stores activities and alerts, one event per item', async () => {
    await register({ deviceid: 'dev-1' });
    const acts = await f.call('POST', '/devices/dev-1/activities', [
      { activity_type: 'app_usage', app: 'editor', duration: 120, description: 'typing' },
      { activity_type: 'idle' },
    ]);
    expect(acts.json).toEqual({ inserted: 2 });
    const alerts = await f.call('POST', '/devices/dev-1/alerts', [
      { level: 'critical', alert_type: 'cpu', message: 'hot', value: 99.5, threshold: 90 },
    ]);
    expect(alerts.json).toEqual({ inserted: 1 });
    const listed = await f.call('GET', '/devices/dev-1/activities');
    expect(listed.json.map((a: { activity_type: string }) => a.activity_type)).toEqual(['idle', 'app_usage']);
    expect(listed.json[1]).toMatchObject({ app: 'editor', duration: 120, description: 'typing' });
    expect((await f.call('GET', '/devices/dev-1/alerts')).json[0]).toMatchObject({
      level: 'critical',
      alert_type: 'cpu',
      value: 99.5,
      threshold: 90,
    });
    expect(await f.call('POST', '/devices/dev-1/activities', [])).toMatchObject({ status: 200, json: { inserted: 0 } });
    expect(await eventTypes()).toEqual(['device.registered', 'activity.submitted', 'activity.submitted', 'alert.submitted']);
  });

  it('replaces the process list with each snapshot, and an empty one clears it', async () => {
    await register({ deviceid: 'dev-1' });
    await f.call('POST', '/devices/dev-1/processes', [
      { pid: 1, process_name: 'init' },
      { pid: 2, process_name: 'sh', cpu: 0.5, memory: 1024, command_text: '/bin/sh' },
    ]);
    const second = await f.call('POST', '/devices/dev-1/processes', [{ pid: 7, process_name: 'node', cpu: 12 }]);
    expect(second.json).toEqual({ inserted: 1 });
    const listed = await f.call('GET', '/devices/dev-1/processes');
    expect(listed.json).toHaveLength(1);
    expect(listed.json[0]).toMatchObject({ pid: 7, process_name: 'node', cpu: 12, deviceid: 'dev-1' });
    expect((await f.call('POST', '/devices/dev-1/processes', [])).json).toEqual({ inserted: 0 });
    expect((await f.call('GET', '/devices/dev-1/processes')).json).toEqual([]);
    expect(await eventTypes()).toEqual(['device.registered', 'process.snapshot', 'process.snapshot', 'process.snapshot']);
  });

  it.each([
    ['png', PNG, 'image/png'],
    ['jpeg', JPEG, 'image/jpeg'],
    ['webp', WEBP, 'image/webp'],
  ])('accepts a %s upload, keeps it under DATA_DIR and serves its bytes', async (_name, bytes, type) => {
    await register({ deviceid: 'dev-1' });
    const up = await f.call('POST', '/devices/dev-1/screenshots', imageForm(bytes, { resolution: '1920x1080' }));
    expect(up.status, up.text).toBe(201);
    expect(up.json).toMatchObject({ deviceid: 'dev-1', resolution: '1920x1080', size: bytes.length });
    expect(up.json.screenshotid).toMatch(UUID);
    expect(readdirSync(path.join(f.dataDir, 'screenshots'))).toHaveLength(1);
    const got = await fetch(`${f.host.url}/api/v1/screenshots/${up.json.screenshotid}`);
    expect(got.status).toBe(200);
    expect(got.headers.get('content-type')).toBe(type);
    expect(Buffer.from(await got.arrayBuffer()).equals(bytes)).toBe(true);
    const listed = await f.call('GET', '/devices/dev-1/screenshots');
    expect(listed.json[0]).toMatchObject({ screenshotid: up.json.screenshotid, content_type: type });
  });

  it('records screenshot metadata sent as JSON', async () => {
    await register({ deviceid: 'dev-1' });
    const r = await f.call('POST', '/devices/dev-1/screenshots', { path: 's3://bucket/shot.png', resolution: '800x600', size: 1234 });
    expect(r.status).toBe(201);
    expect(r.json).toMatchObject({ deviceid: 'dev-1', path: 's3://bucket/shot.png', resolution: '800x600', size: 1234 });
    expect((await f.call('GET', `/screenshots/${r.json.screenshotid}`)).status).toBe(404);
    expect(await eventTypes()).toEqual(['device.registered', 'screenshot.submitted']);
  });

  it('queues commands idempotently, lists pending oldest first, and records results', async () => {
    await register({ deviceid: 'dev-1' });
    const a = await f.call('POST', '/devices/dev-1/commands', { commandid: 'cmd-a', command_text: 'status' });
    expect(a.json).toMatchObject({ status: 'pending', commandid: 'cmd-a', deviceid: 'dev-1', command_text: 'status', created: true });
    expect((await f.call('POST', '/devices/dev-1/commands', { commandid: 'cmd-a', command_text: 'status' })).json.created).toBe(false);
    await f.call('POST', '/devices/dev-1/commands', { commandid: 'cmd-b', command_text: 'get_info', created_at: '2025-01-01T00:00:00Z' });
    const pending = await f.call('GET', '/devices/dev-1/commands/pending');
    expect(pending.json.map((c: { commandid: string }) => c.commandid)).toEqual(['cmd-a', 'cmd-b']);
    const done = await f.call('POST', '/devices/commands/cmd-a/result', { status: 'completed', result: 'all good', exit_code: 0 });
    expect(done.json).toEqual({ status: 'ok', commandid: 'cmd-a' });
    expect((await f.call('GET', '/devices/dev-1/commands/pending')).json.map((c: { commandid: string }) => c.commandid)).toEqual(['cmd-b']);
    const all = await f.call('GET', '/devices/dev-1/commands');
    expect(all.json[0]).toMatchObject({ commandid: 'cmd-b', status: 'pending', created_at: '2025-01-01T00:00:00.000Z' });
    expect(all.json[1]).toMatchObject({ commandid: 'cmd-a', status: 'completed', result: 'all good', exit_code: 0 });
    expect(await f.count('commands')).toBe(2);
    expect(await eventTypes()).toEqual(['device.registered', 'command.updated']);
  });

  it('answers 404 for unknown devices, commands and screenshots on the read API', async () => {
    expect((await f.call('GET', '/devices/ghost')).status).toBe(404);
    expect((await f.call('GET', '/devices/ghost/metrics')).status).toBe(404);
    expect((await f.call('GET', '/devices/ghost/commands/pending')).status).toBe(404);
    expect((await f.call('GET', '/screenshots/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await f.call('GET', '/screenshots/not-a-uuid')).status).toBe(404);
    expect((await f.call('POST', '/devices/commands/nope/result', { status: 'running' })).status).toBe(404);
  });

  it.each(['0', '1001', 'abc', '2.5'])('refuses ?limit=%s on the read API with a 422 naming limit', async (limit) => {
    await register({ deviceid: 'dev-1' });
    const r = await f.call('GET', `/devices/dev-1/metrics?limit=${limit}`);
    expect(r.status).toBe(422);
    expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(r.json.errors.map((e: { path: string }) => e.path)).toEqual(['limit']);
  });
});

describe('KnownDevices', () => {
  it('trusts a device until its TTL, forgets it after, and starts over when full', () => {
    const known = new KnownDevices(1000, 2);
    expect(known.has('a', 0)).toBe(false);
    known.add('a', 0);
    expect(known.has('a', 999)).toBe(true);
    expect(known.has('a', 1000)).toBe(false);
    known.add('a', 2000);
    known.add('b', 2000);
    known.add('c', 2000);
    expect([known.has('a', 2001), known.has('b', 2001), known.has('c', 2001)]).toEqual([false, false, true]);
  });
});
