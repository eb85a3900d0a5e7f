/**
 * DEVICE_AUTH=token: registration hands out a per-device token (stored hashed), re-registration needs it and
 * rotates it, every device route needs that device's token, reads also take the admin token, cross-device
 * reads need the admin token. DEVICE_AUTH=none stays open. A host exposed without auth warns once.
 */
import { createHash } from 'node:crypto';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../hosts/shared/config.js';
import { createLogger } from '../hosts/shared/logging.js';
import { startDevicesHost } from '../hosts/devices/server.js';
import { isLoopback } from '../hosts/shared/server.js';
import { runSimulation } from '../hosts/simulate.js';
import { generateSecret, signHeaders } from '../lib/signing.js';
import { createSqliteUrl, DIALECTS } from './helpers/db.js';
import { expectProblem, imageForm, PNG, snapshotCounts, startDevices } from './devices.fixture.js';
import type { DevicesFixture, Reply } from './devices.fixture.js';

const ADMIN = 'admin-token-for-device-auth-tests';
const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

function expect401(r: Reply): void {
  expectProblem(r, 401);
  expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
}

describe.each(DIALECTS)('DEVICE_AUTH=token (%s)', (dialect) => {
  let f: DevicesFixture | undefined;
  afterEach(async () => {
    await f?.cleanup();
    f = undefined;
  });

  async function twoDevices(env: Record<string, string> = {}) {
    f = await startDevices(dialect, { env: { DEVICE_AUTH: 'token', RELAY_ADMIN_TOKEN: ADMIN, ...env } });
    const a = await f.call('POST', '/devices/register', { deviceid: 'dev-a' });
    const b = await f.call('POST', '/devices/register', { deviceid: 'dev-b' });
    expect(a.json).toMatchObject({ deviceid: 'dev-a', created: true, device_token: expect.stringMatching(/^[A-Za-z0-9_-]{43}$/) });
    return { f, a: a.json.device_token as string, b: b.json.device_token as string };
  }

  it('answers a token once and stores only its hash', async () => {
    const { f, a, b } = await twoDevices();
    expect(a).not.toBe(b);
    const [row] = await f.rows("SELECT token_hash FROM devices WHERE deviceid = 'dev-a'");
    expect(row!.token_hash).toBe(createHash('sha256').update(a).digest('hex'));
    // Not in the device's read answer, nor in the event forwarded for it.
    const read = await f.call('GET', '/devices/dev-a', undefined, bearer(a));
    expect(read.status).toBe(200);
    expect(read.text).not.toContain(a);
    expect(read.text).not.toContain('token');
    const events = await f.rows('SELECT * FROM relay_events');
    expect(JSON.stringify(events)).not.toContain(a);
    expect(JSON.stringify(events)).not.toContain(String(row!.token_hash));
  });

  it("device A's token can neither post nor read as device B; nothing is stored", async () => {
    const { f, a, b } = await twoDevices();
    const before = await snapshotCounts(f);
    const posts: Array<[string, unknown]> = [
      ['/devices/dev-b/metrics', { cpu_usage: 10 }],
      ['/devices/dev-b/processes', [{ pid: 1, process_name: 'init' }]],
      ['/devices/dev-b/activities', [{ activity_type: 'app' }]],
      ['/devices/dev-b/alerts', [{ level: 'info', alert_type: 'x' }]],
      ['/devices/dev-b/screenshots', { path: 'x.png' }],
    ];
    for (const [p, body] of posts) {
      expect401(await f.call('POST', p, body, bearer(a)));
      expect401(await f.call('POST', p, body));
    }
    expect401(await f.call('POST', '/devices/dev-b/screenshots', imageForm(PNG), bearer(a)));
    expect401(await f.call('POST', '/devices/dev-b/metrics', { cpu_usage: 10 }, { headers: { authorization: `Basic ${b}` } }));
    // An unknown device answers like a wrong token: no oracle for which ids exist.
    expect401(await f.call('POST', '/devices/ghost/metrics', { cpu_usage: 10 }, bearer(a)));
    for (const p of ['', '/metrics', '/processes', '/activities', '/alerts', '/screenshots', '/commands', '/commands/pending']) {
      expect401(await f.call('GET', `/devices/dev-b${p}`, undefined, bearer(a)));
      expect401(await f.call('GET', `/devices/dev-b${p}`));
    }
    expect(await snapshotCounts(f)).toEqual(before);
    // Its own token works.
    expect((await f.call('POST', '/devices/dev-b/metrics', { cpu_usage: 10 }, bearer(b))).status).toBe(200);
    expect((await f.call('GET', '/devices/dev-b/metrics', undefined, bearer(b))).json).toHaveLength(1);
  });

  it('the admin token reads every device; cross-device reads need it', async () => {
    const { f, a } = await twoDevices();
    const shot = await f.call('POST', '/devices/dev-a/screenshots', imageForm(PNG), bearer(a));
    expect(shot.status).toBe(201);
    expect401(await f.call('GET', '/devices', undefined, bearer(a)));
    expect401(await f.call('GET', '/devices'));
    expect401(await f.call('GET', `/screenshots/${shot.json.screenshotid}`, undefined, bearer(a)));
    const all = await f.call('GET', '/devices', undefined, bearer(ADMIN));
    expect(all.json.map((d: { deviceid: string }) => d.deviceid).sort()).toEqual(['dev-a', 'dev-b']);
    expect((await f.call('GET', `/screenshots/${shot.json.screenshotid}`, undefined, bearer(ADMIN))).status).toBe(200);
    for (const p of ['', '/screenshots', '/commands/pending'])
      expect((await f.call('GET', `/devices/dev-b${p}`, undefined, bearer(ADMIN))).status).toBe(200);
    // The admin token is not a device token: it cannot post as a device.
    expect401(await f.call('POST', '/devices/dev-a/metrics', { cpu_usage: 1 }, bearer(ADMIN)));
  });

  it('re-registration needs the current token and rotates it', async () => {
    const { f, a, b } = await twoDevices();
    expect401(await f.call('POST', '/devices/register', { deviceid: 'dev-a', device_name: 'hijacked' }));
    expect401(await f.call('POST', '/devices/register', { deviceid: 'dev-a', device_name: 'hijacked' }, bearer(b)));
    expect((await f.rows("SELECT device_name FROM devices WHERE deviceid = 'dev-a'"))[0]!.device_name).toBeNull();
    const again = await f.call('POST', '/devices/register', { deviceid: 'dev-a', device_name: 'Laptop' }, bearer(a));
    expect(again.json).toMatchObject({ deviceid: 'dev-a', created: null, updated: true, device_token: expect.any(String) });
    const rotated = again.json.device_token as string;
    expect(rotated).not.toBe(a);
    expect401(await f.call('POST', '/devices/dev-a/metrics', { cpu_usage: 1 }, bearer(a)));
    expect((await f.call('POST', '/devices/dev-a/metrics', { cpu_usage: 1 }, bearer(rotated))).status).toBe(200);
    // The admin token re-issues one (a lost token, or a device registered while DEVICE_AUTH was none).
    const reset = await f.call('POST', '/devices/register', { deviceid: 'dev-a' }, bearer(ADMIN));
    expect(reset.json.device_token).toEqual(expect.any(String));
    expect401(await f.call('POST', '/devices/dev-a/metrics', { cpu_usage: 1 }, bearer(rotated)));
  });

  it("a command result needs the token of the command's device", async () => {
    const secret = generateSecret();
    const { f, a, b } = await twoDevices({ MENTOR_SIGNING_SECRET: secret });
    const cmd = JSON.stringify({ commandid: 'cmd-1', deviceid: 'dev-a', command_text: 'status' });
    const queued = await f.call('POST', '/devices/dev-a/commands', cmd, {
      headers: { 'content-type': 'application/json', ...signHeaders({ id: 'msg_1', body: cmd, secret }) },
    });
    expect(queued.status).toBe(200);
    expect((await f.call('GET', '/devices/dev-a/commands/pending', undefined, bearer(a))).json).toHaveLength(1);
    expect401(await f.call('POST', '/devices/commands/cmd-1/result', { status: 'completed' }, bearer(b)));
    expect401(await f.call('POST', '/devices/commands/cmd-1/result', { status: 'completed' }));
    expect((await f.rows("SELECT status FROM commands WHERE commandid = 'cmd-1'"))[0]!.status).toBe('pending');
    expect((await f.call('POST', '/devices/commands/cmd-1/result', { status: 'completed' }, bearer(a))).status).toBe(200);
  });
});

describe.each(DIALECTS)('DEVICE_AUTH=none (%s)', (dialect) => {
  let f: DevicesFixture | undefined;
  afterEach(async () => {
    await f?.cleanup();
    f = undefined;
  });

  it('stays open: no token answered, none required', async () => {
    f = await startDevices(dialect);
    const r = await f.call('POST', '/devices/register', { deviceid: 'dev-a' });
    expect(r.json).toEqual({ deviceid: 'dev-a', created: true, updated: null });
    expect((await f.call('POST', '/devices/register', { deviceid: 'dev-a' })).json).toEqual({
      deviceid: 'dev-a',
      created: null,
      updated: true,
    });
    expect((await f.call('POST', '/devices/dev-a/metrics', { cpu_usage: 5 })).status).toBe(200);
    expect((await f.call('GET', '/devices/dev-a/metrics')).json).toHaveLength(1);
    expect((await f.call('GET', '/devices')).json).toHaveLength(1);
    expect((await f.rows('SELECT token_hash FROM devices'))[0]!.token_hash).toBeNull();
  });
});

describe('the warning for a devices host exposed without auth', () => {
  async function startLogged(env: Record<string, string>, host: string) {
    const lines: Array<{ level: number; msg: string }> = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        cb();
      },
    });
    const database = createSqliteUrl();
    const config = loadConfig('devices', { DATABASE_URL: database.url, DATA_DIR: database.dir, PORT: '0', ...env });
    const running = await startDevicesHost(config, { host, logger: createLogger({ service: 'devices', level: 'info', destination }) });
    await running.close();
    await database.drop();
    return lines.filter((l) => l.level === 40 && /DEVICE_AUTH=none/.test(l.msg));
  }

  it('is logged once on a non-loopback address with DEVICE_AUTH=none, and not otherwise', async () => {
    expect(await startLogged({}, '0.0.0.0')).toHaveLength(1);
    expect(await startLogged({}, '127.0.0.1')).toHaveLength(0);
    expect(await startLogged({ DEVICE_AUTH: 'token' }, '0.0.0.0')).toHaveLength(0);
  });

  it('knows loopback addresses', () => {
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) expect(isLoopback(h)).toBe(true);
    for (const h of ['0.0.0.0', '::', '192.168.1.10', '10.0.0.1']) expect(isLoopback(h)).toBe(false);
  });

  it('refuses a bad DEVICE_AUTH naming the variable', () => {
    expect(() => loadConfig('devices', { DEVICE_AUTH: 'password' })).toThrow(/DEVICE_AUTH must be token .* or none/);
  });
});

describe('simulate against DEVICE_AUTH=token', () => {
  let f: DevicesFixture | undefined;
  afterEach(async () => {
    await f?.cleanup();
    f = undefined;
  });

  it('sends each device the token its registration answered', async () => {
    f = await startDevices('sqlite', { env: { DEVICE_AUTH: 'token' } });
    const s = await runSimulation({ url: f.host.url, devices: 3, rate: 30, durationSec: 1 });
    expect(s.byKind.register).toEqual({ ok: 3, failed: 0 });
    expect(s.failed).toBe(0);
    expect(s.ok).toBeGreaterThan(3);
  });
});
