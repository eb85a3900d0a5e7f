/**
 * `POST /devices/commands {"deviceid", "command_text"}` (Raqeem's dashboard, issue 15): the same as
 * `POST /devices/{id}/commands` — the allow-list, the admin token before the body, 404 for an unknown
 * device, and delivery to the devices host as a signed `command.created`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { generateSecret, verify } from '../lib/signing.js';
import { DIALECTS } from './helpers/db.js';
import { fixtures, startMentorFixture } from './helpers/mentor.js';
import type { MentorFixture } from './helpers/mentor.js';
import { startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';

describe.each(DIALECTS)('POST /devices/commands (%s)', (dialect) => {
  let m: MentorFixture | undefined;
  let sink: Sink | undefined;
  afterEach(async () => {
    await m?.close();
    await sink?.close();
    m = undefined;
    sink = undefined;
  });

  it('creates the command for the body deviceid and delivers it, signed, to the devices host', async () => {
    sink = await startSink();
    const secret = generateSecret();
    m = await startMentorFixture(dialect, { DEVICES_API_URL: sink.url, MENTOR_SIGNING_SECRET: secret, FORWARD_BACKOFF_BASE: '0.05' });
    await m.post('/devices/register', fixtures.registration('dev-1'));
    const r = await m.post('/devices/commands', { deviceid: 'dev-1', command_text: 'get_processes' });
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ deviceid: 'dev-1', command_text: 'get_processes', status: 'pending' });
    await sink.waitFor(1);
    const [req] = sink.requests;
    expect(req!.path).toBe('/api/v1/devices/dev-1/commands');
    expect(() => verify(req!.body, req!.headers as Record<string, string>, secret)).not.toThrow();
    expect(JSON.parse(req!.body)).toMatchObject({ commandid: r.body.commandid, deviceid: 'dev-1', command_text: 'get_processes' });
    expect((await m.get('/devices/dev-1/commands')).body).toEqual([expect.objectContaining({ commandid: r.body.commandid })]);
  });

  it('refuses what the path form refuses, naming the field, and stores nothing', async () => {
    m = await startMentorFixture(dialect);
    await m.post('/devices/register', fixtures.registration('dev-1'));
    const refused = await m.post('/devices/commands', { deviceid: 'dev-1', command_text: 'rm -rf /' });
    expect(refused.status).toBe(400);
    expect(refused.body.errors).toEqual([expect.objectContaining({ path: 'command_text' })]);
    for (const [body, fields] of [
      [{ command_text: 'status' }, ['deviceid']],
      [{ deviceid: '../etc', command_text: 'status' }, ['deviceid']],
      [{ deviceid: 'dev-1', command_text: '  ' }, ['command_text']],
      [{}, ['command_text', 'deviceid']],
    ] as const) {
      const r = await m.post('/devices/commands', body);
      expect(r.status, JSON.stringify(body)).toBe(422);
      expect(r.contentType).toContain('application/problem+json');
      expect(r.body.errors.map((e: { path: string }) => e.path).sort()).toEqual([...fields]);
    }
    const unknown = await m.post('/devices/commands', { deviceid: 'nobody', command_text: 'status' });
    expect(unknown.status).toBe(404);
    expect((await m.get('/devices/dev-1/commands')).body).toEqual([]);
    expect(await m.host.relay.counts()).toEqual([]);
  });

  it('requires the admin token before reading the body when RELAY_ADMIN_TOKEN is set', async () => {
    m = await startMentorFixture(dialect, { RELAY_ADMIN_TOKEN: 'mentor-admin-token' });
    await m.post('/devices/register', fixtures.registration('dev-1'));
    expect((await m.post('/devices/commands', { deviceid: 'dev-1', command_text: 'status' })).status).toBe(401);
    const malformed = await fetch(`${m.url}/devices/commands`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"deviceid":',
    });
    expect(malformed.status).toBe(401);
    const ok = await m.post(
      '/devices/commands',
      { deviceid: 'dev-1', command_text: 'status' },
      { headers: { authorization: 'Bearer mentor-admin-token' } },
    );
    expect(ok.status).toBe(201);
  });
});
