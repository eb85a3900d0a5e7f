/** Mentor commands: the whitelist, storage as pending, delivery to the devices host, status reports. */
import { afterEach, describe, expect, it } from 'vitest';
import { generateSecret, verify } from '../lib/signing.js';
import { DIALECTS } from './helpers/db.js';
import { fixtures, startMentorFixture } from './helpers/mentor.js';
import type { MentorFixture } from './helpers/mentor.js';
import { startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';

const ALLOWED = ['get_info', 'status', 'restart', 'get_processes', 'get_logs', 'restart_service nginx', 'screenshot --full'];
const REFUSED = ['rm -rf /', 'GET_INFO', 'get_info2', 'sudo restart', 'shutdown now', 'get-info'];

describe.each(DIALECTS)('mentor commands (%s)', (dialect) => {
  let m: MentorFixture | undefined;
  let sink: Sink | undefined;
  afterEach(async () => {
    await m?.close();
    await sink?.close();
    m = undefined;
    sink = undefined;
  });

  it('stores whitelisted commands pending and delivers each, signed, to the devices host', async () => {
    sink = await startSink();
    const secret = generateSecret();
    m = await startMentorFixture(dialect, { DEVICES_API_URL: sink.url, MENTOR_SIGNING_SECRET: secret, FORWARD_BACKOFF_BASE: '0.05' });
    await m.post('/devices/register', fixtures.registration('dev-1'));

    const created: Array<{ commandid: string; command_text: string }> = [];
    for (const command_text of ALLOWED) {
      const r = await m.post('/devices/dev-1/commands', { command_text });
      expect(r.status).toBe(201);
      expect(r.body).toMatchObject({ deviceid: 'dev-1', command_text, status: 'pending', result: null, exit_code: null });
      expect(r.body.commandid).toMatch(/^[0-9a-f-]{36}$/);
      created.push(r.body);
    }
    await sink.waitFor(ALLOWED.length);
    for (const req of sink.requests) {
      expect(req.method).toBe('POST');
      expect(req.path).toBe('/api/v1/devices/dev-1/commands');
      expect(() => verify(req.body, req.headers as Record<string, string>, secret)).not.toThrow();
      expect(req.headers['idempotency-key']).toBeTruthy();
    }
    const delivered = sink.requests.map(
      (r) => JSON.parse(r.body) as { commandid: string; deviceid: string; command_text: string; created_at: string },
    );
    expect(delivered.map((d) => d.commandid).sort()).toEqual(created.map((c) => c.commandid).sort());
    // deviceid travels in the signed body: the devices host refuses the command on any other device's path.
    for (const d of delivered) expect(Object.keys(d).sort()).toEqual(['command_text', 'commandid', 'created_at', 'deviceid']);
    expect(delivered.every((d) => d.deviceid === 'dev-1')).toBe(true);

    const listed = (await m.get('/devices/dev-1/commands')).body as Array<{ commandid: string; status: string }>;
    expect(listed).toHaveLength(ALLOWED.length);
    expect(listed.every((c) => c.status === 'pending')).toBe(true);
  });

  it('refuses commands outside the whitelist with 400 and stores and sends nothing', async () => {
    sink = await startSink();
    m = await startMentorFixture(dialect, { DEVICES_API_URL: sink.url });
    await m.post('/devices/register', fixtures.registration('dev-1'));
    for (const command_text of REFUSED) {
      const r = await m.post('/devices/dev-1/commands', { command_text });
      expect(r.status).toBe(400);
      expect(r.contentType).toContain('application/problem+json');
      expect(r.body.detail).toContain('get_info, status, restart, get_processes, get_logs, restart_service, screenshot');
    }
    for (const body of [{}, { command_text: '   ' }, { command_text: 7 }]) {
      const r = await m.post('/devices/dev-1/commands', body);
      expect(r.status).toBe(422);
      expect(r.body.errors).toEqual([expect.objectContaining({ path: 'command_text' })]);
    }
    expect((await m.get('/devices/dev-1/commands')).body).toEqual([]);
    expect(await m.host.relay.counts()).toEqual([]);
    expect(sink.requests).toHaveLength(0);
  });

  it('requires the admin token to create commands when RELAY_ADMIN_TOKEN is set on the mentor', async () => {
    m = await startMentorFixture(dialect, { RELAY_ADMIN_TOKEN: 'mentor-admin-token' });
    await m.post('/devices/register', fixtures.registration('dev-1'));
    const none = await m.post('/devices/dev-1/commands', { command_text: 'status' });
    expect(none.status).toBe(401);
    expect(none.contentType).toContain('application/problem+json');
    // The token is checked before the body is read: a malformed or oversized body without it is a 401 too.
    for (const body of ['{"command_text":', 'x'.repeat(2 * 1024 * 1024)]) {
      const r = await fetch(`${m.url}/devices/dev-1/commands`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      expect(r.status).toBe(401);
      await r.arrayBuffer();
    }
    const wrong = await m.post('/devices/dev-1/commands', { command_text: 'status' }, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    expect(JSON.stringify(wrong.body)).not.toContain('mentor-admin-token');
    expect((await m.get('/devices/dev-1/commands')).body).toEqual([]);
    const ok = await m.post(
      '/devices/dev-1/commands',
      { command_text: 'status' },
      { headers: { authorization: 'Bearer mentor-admin-token' } },
    );
    expect(ok.status).toBe(201);
  });

  it('answers 404 for a command to an unknown device', async () => {
    m = await startMentorFixture(dialect);
    const r = await m.post('/devices/nobody/commands', { command_text: 'status' });
    expect(r.status).toBe(404);
    expect(r.contentType).toContain('application/problem+json');
  });

  it('stores commands without delivering them when DEVICES_API_URL is unset', async () => {
    m = await startMentorFixture(dialect);
    await m.post('/devices/register', fixtures.registration('dev-1'));
    expect((await m.post('/devices/dev-1/commands', { command_text: 'get_logs' })).status).toBe(201);
    expect(await m.host.relay.counts()).toEqual([]);
    expect((await m.get('/devices/dev-1/commands')).body).toHaveLength(1);
  });

  it('applies status reports and refuses unknown or mismatched commands', async () => {
    m = await startMentorFixture(dialect);
    await m.post('/devices/register', fixtures.registration('dev-1'));
    const { commandid } = (await m.post('/devices/dev-1/commands', { command_text: 'get_info' })).body as { commandid: string };

    const running = await m.post('/commands/status', { commandid, deviceid: 'dev-1', status: 'running', result: null, exit_code: null });
    expect(running.body).toMatchObject({ status: 'ok', applied: true, command: { status: 'running' } });
    const done = await m.post('/commands/status', {
      commandid,
      deviceid: 'dev-1',
      status: 'completed',
      result: 'uptime 3 days',
      exit_code: 0,
    });
    expect(done.body).toMatchObject({ applied: true, command: { commandid, status: 'completed', result: 'uptime 3 days', exit_code: 0 } });

    expect(
      (await m.post('/commands/status', { commandid: 'nope', deviceid: 'dev-1', status: 'failed', result: 'x', exit_code: 1 })).status,
    ).toBe(404);
    expect((await m.post('/commands/status', { commandid, deviceid: 'dev-2', status: 'failed', result: 'x', exit_code: 1 })).status).toBe(
      404,
    );
    const bad = await m.post('/commands/status', { commandid, deviceid: 'dev-1', status: 'exploded', exit_code: 300 });
    expect(bad.status).toBe(422);
    expect(bad.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['exit_code', 'status']);
    expect(((await m.get('/devices/dev-1/commands')).body as Array<{ status: string }>)[0]!.status).toBe('completed');
  });
});
