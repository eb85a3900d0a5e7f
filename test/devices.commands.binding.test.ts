/**
 * A signed `command.created` is bound to its device: the body names `deviceid`, and the devices host refuses
 * it on any other device's path, without one, and as a replay of its webhook-id carrying another body.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { startDevicesHost } from '../hosts/devices/server.js';
import { loadConfig } from '../hosts/shared/config.js';
import { createLogger } from '../hosts/shared/logging.js';
import { generateSecret, signHeaders } from '../lib/signing.js';
import { createSqliteUrl, DIALECTS } from './helpers/db.js';
import { expectProblem, snapshotCounts, startDevices } from './devices.fixture.js';
import type { DevicesFixture } from './devices.fixture.js';

const json = { 'content-type': 'application/json' };

describe.each(DIALECTS)('commands bound to their device (%s)', (dialect) => {
  let f: DevicesFixture | undefined;
  afterEach(async () => {
    await f?.cleanup();
    f = undefined;
  });

  async function signedHost() {
    const secret = generateSecret();
    f = await startDevices(dialect, { env: { MENTOR_SIGNING_SECRET: secret } });
    for (const deviceid of ['dev-a', 'dev-b']) expect((await f.call('POST', '/devices/register', { deviceid })).status).toBe(200);
    return { f, secret };
  }

  it('refuses a captured signed command re-posted to another device and stores nothing', async () => {
    const { f, secret } = await signedHost();
    const body = JSON.stringify({ commandid: 'cmd-1', deviceid: 'dev-a', command_text: 'restart' });
    const captured = signHeaders({ id: 'msg_cap', body, secret });
    const before = await snapshotCounts(f);
    // Re-posted first to the other device (before the original arrived), then after it.
    const stolen = await f.call('POST', '/devices/dev-b/commands', body, { headers: { ...json, ...captured } });
    expectProblem(stolen, 401);
    expect(stolen.headers.get('www-authenticate')).toBe('Webhook');
    expect(await snapshotCounts(f)).toEqual(before);
    const ok = await f.call('POST', '/devices/dev-a/commands', body, {
      headers: { ...json, ...signHeaders({ id: 'msg_ok', body, secret }) },
    });
    expect(ok.json).toMatchObject({ status: 'pending', deviceid: 'dev-a', created: true });
    const fresh = signHeaders({ id: 'msg_other', body, secret });
    expectProblem(await f.call('POST', '/devices/dev-b/commands', body, { headers: { ...json, ...fresh } }), 401);
    expect(await f.rows("SELECT deviceid FROM commands WHERE deviceid = 'dev-b'")).toEqual([]);
    expect(await f.count('commands')).toBe(1);
  });

  it('refuses a signed command without deviceid', async () => {
    const { f, secret } = await signedHost();
    const body = JSON.stringify({ commandid: 'cmd-2', command_text: 'status' });
    const r = await f.call('POST', '/devices/dev-a/commands', body, {
      headers: { ...json, ...signHeaders({ id: 'msg_1', body, secret }) },
    });
    expectProblem(r, 401);
    expect(r.json.detail).toContain('deviceid');
    expect(await f.count('commands')).toBe(0);
  });

  it('refuses a replayed webhook-id carrying another body; the same body again is an idempotent no-op', async () => {
    const { f, secret } = await signedHost();
    const first = JSON.stringify({ commandid: 'cmd-3', deviceid: 'dev-a', command_text: 'status' });
    const headers = { ...json, ...signHeaders({ id: 'msg_same', body: first, secret }) };
    expect((await f.call('POST', '/devices/dev-a/commands', first, { headers })).json).toMatchObject({ created: true });
    // A sender's retry: same id, same bytes (a fresh timestamp and signature, as the relay sends).
    const retry = { ...json, ...signHeaders({ id: 'msg_same', body: first, secret }) };
    const again = await f.call('POST', '/devices/dev-a/commands', first, { headers: retry });
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ created: false });
    // Validly signed (a holder of the secret), but the id was already used for something else.
    const other = JSON.stringify({ commandid: 'cmd-4', deviceid: 'dev-a', command_text: 'restart' });
    const replay = await f.call('POST', '/devices/dev-a/commands', other, {
      headers: { ...json, ...signHeaders({ id: 'msg_same', body: other, secret }) },
    });
    expectProblem(replay, 401);
    expect(replay.json.detail).toContain('replayed_id');
    expect(await f.count('commands')).toBe(1);
  });

  it('without signing, a body naming another device is a 422 and an absent deviceid is still accepted', async () => {
    f = await startDevices(dialect);
    await f.call('POST', '/devices/register', { deviceid: 'dev-a' });
    expectProblem(await f.call('POST', '/devices/dev-a/commands', { commandid: 'c-1', deviceid: 'dev-b', command_text: 'status' }), 422, [
      'deviceid',
    ]);
    expect(await f.count('commands')).toBe(0);
    expect((await f.call('POST', '/devices/dev-a/commands', { commandid: 'c-1', command_text: 'status' })).json).toMatchObject({
      created: true,
    });
  });
});

describe('refusals are logged', () => {
  it('logs a command for another device and a replayed webhook-id as warnings, without the signature', async () => {
    const lines: Array<{ level: number; msg: string }> = [];
    const raw: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) {
          raw.push(l);
          lines.push(JSON.parse(l));
        }
        cb();
      },
    });
    const secret = generateSecret();
    const database = createSqliteUrl();
    const config = loadConfig('devices', { DATABASE_URL: database.url, DATA_DIR: database.dir, PORT: '0', MENTOR_SIGNING_SECRET: secret });
    const host = await startDevicesHost(config, { logger: createLogger({ service: 'devices', level: 'info', destination }) });
    try {
      const post = (p: string, body: string, headers: Record<string, string> = {}) =>
        fetch(`${host.url}/api/v1${p}`, { method: 'POST', headers: { ...json, ...headers }, body });
      for (const deviceid of ['dev-a', 'dev-b']) await post('/devices/register', JSON.stringify({ deviceid }));
      const body = JSON.stringify({ commandid: 'c-1', deviceid: 'dev-a', command_text: 'status' });
      const sig = signHeaders({ id: 'msg_log', body, secret });
      expect((await post('/devices/dev-b/commands', body, sig)).status).toBe(401);
      const other = JSON.stringify({ commandid: 'c-2', deviceid: 'dev-b', command_text: 'status' });
      expect((await post('/devices/dev-b/commands', other, signHeaders({ id: 'msg_log', body: other, secret }))).status).toBe(401);
    } finally {
      await host.close();
      await database.drop();
    }
    const warned = lines.filter((l) => l.level === 40).map((l) => l.msg);
    expect(warned).toContain('refused a command whose body does not name the device of its path');
    expect(warned).toContain('rejected a replayed webhook-id carrying a different request');
    expect(raw.join('\n')).not.toMatch(/v1,[A-Za-z0-9+/=]{20,}/);
  });
});
