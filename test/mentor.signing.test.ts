/** With MENTOR_SIGNING_SECRET set, every ingest endpoint refuses unsigned and badly signed requests. */
import { afterEach, describe, expect, it } from 'vitest';
import { generateSecret, signHeaders } from '../lib/signing.js';
import { DIALECTS } from './helpers/db.js';
import { fixtures, startMentorFixture } from './helpers/mentor.js';
import type { MentorFixture } from './helpers/mentor.js';

const INGEST: Array<[string, () => unknown]> = [
  ['/devices/register', () => fixtures.registration('dev-1')],
  ['/devices/metrics', () => fixtures.metric('dev-1')],
  ['/devices/activity', () => [fixtures.activity('dev-1')]],
  ['/devices/alerts', () => fixtures.alert('dev-1')],
  ['/devices/dev-1/alerts', () => [fixtures.alert('dev-1')]],
  ['/devices/screenshots', () => fixtures.screenshot('dev-1')],
  ['/devices/processes', () => ({ deviceid: 'dev-1', snapshot_at: new Date().toISOString(), processes: [] })],
  ['/commands/status', () => ({ commandid: 'c-1', deviceid: 'dev-1', status: 'completed', result: 'ok', exit_code: 0 })],
];

describe.each(DIALECTS)('mentor signature checks (%s)', (dialect) => {
  let m: MentorFixture | undefined;
  afterEach(async () => {
    await m?.close();
    m = undefined;
  });

  it.each(INGEST)('%s answers 401 unsigned, badly signed, stale or re-bodied, and stores nothing', async (path, make) => {
    const secret = generateSecret();
    m = await startMentorFixture(dialect, { MENTOR_SIGNING_SECRET: secret });
    const body = JSON.stringify(make());
    const post = (headers: Record<string, string>, raw = body) =>
      fetch(m!.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: raw });

    const expect401 = async (res: Response) => {
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toBe('Webhook');
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(await res.json()).toMatchObject({ status: 401, title: 'Unauthorized' });
    };
    await expect401(await post({}));
    await expect401(await post(signHeaders({ id: 'msg_1', body, secret: generateSecret() })));
    const old = Math.floor(Date.now() / 1000) - 3600;
    await expect401(await post(signHeaders({ id: 'msg_2', body, secret, timestamp: old })));
    // A valid signature of a different body: the signature covers the exact bytes.
    await expect401(await post(signHeaders({ id: 'msg_3', body, secret }), body.replace('dev-1', 'dev-9')));

    expect((await m.get('/devices/dev-1')).status).toBe(404);
    expect((await m.get('/devices/dev-1/metrics')).body).toEqual([]);
    expect((await m.get('/devices/dev-1/alerts')).body).toEqual([]);
  });

  it('accepts correctly signed forwards, including a rotated pair of signatures', async () => {
    const secret = generateSecret();
    m = await startMentorFixture(dialect, { MENTOR_SIGNING_SECRET: secret });
    expect((await m.post('/devices/register', fixtures.registration('dev-1'))).status).toBe(200);
    const body = JSON.stringify(fixtures.metric('dev-1'));
    const res = await fetch(`${m.url}/devices/metrics`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...signHeaders({ id: 'msg_r', body, secret: [generateSecret(), secret] }) },
      body,
    });
    expect(res.status).toBe(200);
    expect((await m.get('/devices/dev-1/metrics')).body).toHaveLength(1);
  });

  it('accepts unsigned forwards when no secret is configured', async () => {
    m = await startMentorFixture(dialect);
    expect((await m.post('/devices/register', fixtures.registration('dev-1'))).status).toBe(200);
    expect((await m.post('/devices/metrics', fixtures.metric('dev-1'))).status).toBe(200);
  });

  it('does not require a signature on the read API', async () => {
    m = await startMentorFixture(dialect, { MENTOR_SIGNING_SECRET: generateSecret() });
    expect((await m.get('/devices')).status).toBe(200);
    expect((await m.get('/health')).body).toEqual({ status: 'ok', service: 'mentor' });
  });
});
