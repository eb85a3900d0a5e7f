/** The signed receivers remember accepted webhook-ids: a replay carrying another request is refused (mentor ingest). */
import { afterEach, describe, expect, it } from 'vitest';
import { generateSecret, signHeaders } from '../lib/signing.js';
import { ReplayMemory } from '../hosts/shared/signature.js';
import { DIALECTS } from './helpers/db.js';
import { fixtures, startMentorFixture } from './helpers/mentor.js';
import type { MentorFixture } from './helpers/mentor.js';

describe('ReplayMemory', () => {
  it('accepts the same fingerprint again and refuses another until the id expires', () => {
    const m = new ReplayMemory(10);
    expect(m.accept('id', 'a', 2_000, 1_000)).toBe(true);
    expect(m.accept('id', 'a', 2_000, 1_500)).toBe(true);
    expect(m.accept('id', 'b', 2_000, 1_500)).toBe(false);
    // Past the tolerance the timestamp no longer verifies anyway: the id is forgotten.
    expect(m.accept('id', 'b', 4_000, 2_000)).toBe(true);
  });

  it('stays bounded: expired ids are swept, then the oldest are forgotten', () => {
    const m = new ReplayMemory(3);
    m.accept('old', 'x', 100, 0);
    for (const id of ['a', 'b']) m.accept(id, 'x', 10_000, 0);
    m.accept('c', 'x', 10_000, 500);
    expect(m.size).toBe(3);
    for (let i = 0; i < 50; i++) m.accept(`n${i}`, 'x', 10_000, 600);
    expect(m.size).toBe(3);
  });
});

describe.each(DIALECTS)('mentor refuses a replayed webhook-id with another body (%s)', (dialect) => {
  let m: MentorFixture | undefined;
  afterEach(async () => {
    await m?.close();
    m = undefined;
  });

  it('stores the first, accepts the same request again, refuses another body and stores nothing of it', async () => {
    const secret = generateSecret();
    m = await startMentorFixture(dialect, { MENTOR_SIGNING_SECRET: secret });
    expect((await m.post('/devices/register', fixtures.registration('dev-1'))).status).toBe(200);
    const send = (path: string, body: string) =>
      fetch(m!.url + path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...signHeaders({ id: 'msg_x', body, secret }) },
        body,
      });
    const first = JSON.stringify(fixtures.metric('dev-1'));
    expect((await send('/devices/metrics', first)).status).toBe(200);
    const again = await send('/devices/metrics', first);
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ stored: 0, duplicates: 1 });
    const other = JSON.stringify(fixtures.metric('dev-1'));
    const replay = await send('/devices/metrics', other);
    expect(replay.status).toBe(401);
    expect(replay.headers.get('content-type')).toContain('application/problem+json');
    expect(replay.headers.get('www-authenticate')).toBe('Webhook');
    // The same id and bytes on another route is another request too.
    expect((await send('/devices/activity', first)).status).toBe(401);
    expect((await m.get('/devices/dev-1/metrics')).body).toHaveLength(1);
  });
});
