/**
 * A signed `command.created` is bound to its device: the body names `deviceid`, and the devices host refuses
 * it on any other device's path, without one, and as a replay of its webhook-id carrying another body.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { generateSecret, signHeaders } from '../lib/signing.js';
import { DIALECTS } from './helpers/db.js';
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
    const ok = await f.call('POST', '/devices/dev-a/commands', body, { headers: { ...json, ...signHeaders({ id: 'msg_ok', body, secret }) } });
    expect(ok.json).toMatchObject({ status: 'ok', deviceid: 'dev-a', created: true });
    const fresh = signHeaders({ id: 'msg_other', body, secret });
    expectProblem(await f.call('POST', '/devices/dev-b/commands', body, { headers: { ...json, ...fresh } }), 401);
    expect(await f.rows("SELECT deviceid FROM commands WHERE deviceid = 'dev-b'")).toEqual([]);
    expect(await f.count('commands')).toBe(1);
  });

  it('refuses a signed command without deviceid', async () => {
    const { f, secret } = await signedHost();
    const body = JSON.stringify({ commandid: 'cmd-2', command_text: 'status' });
    const r = await f.call('POST', '/devices/dev-a/commands', body, { headers: { ...json, ...signHeaders({ id: 'msg_1', body, secret }) } });
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
    const replay = await f.call('POST', '/devices/dev-a/commands', other, { headers: { ...json, ...signHeaders({ id: 'msg_same', body: other, secret }) } });
    expectProblem(replay, 401);
    expect(replay.json.detail).toContain('replayed_id');
    expect(await f.count('commands')).toBe(1);
  });

  it('without signing, a body naming another device is a 422 and an absent deviceid is still accepted', async () => {
    f = await startDevices(dialect);
    await f.call('POST', '/devices/register', { deviceid: 'dev-a' });
    expectProblem(await f.call('POST', '/devices/dev-a/commands', { commandid: 'c-1', deviceid: 'dev-b', command_text: 'status' }), 422, ['deviceid']);
    expect(await f.count('commands')).toBe(0);
    expect((await f.call('POST', '/devices/dev-a/commands', { commandid: 'c-1', command_text: 'status' })).json).toMatchObject({ created: true });
  });
});
