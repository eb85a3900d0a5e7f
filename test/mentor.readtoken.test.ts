/** MENTOR_READ_TOKEN: every read route requires it; ingest stays signature-protected; an open mentor on the network warns. */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../hosts/shared/config.js';
import { createLogger } from '../hosts/shared/logging.js';
import { startMentorHost } from '../hosts/mentor/server.js';
import { createSqliteUrl, DIALECTS } from './helpers/db.js';
import { fixtures, startMentorFixture } from './helpers/mentor.js';
import type { MentorFixture } from './helpers/mentor.js';

const TOKEN = 'mentor-read-token-for-tests';
const READS = [
  '/devices',
  '/devices/dev-1',
  '/devices/dev-1/metrics',
  '/devices/dev-1/processes',
  '/devices/dev-1/activities',
  '/devices/dev-1/alerts',
  '/devices/dev-1/screenshots',
  '/devices/dev-1/commands',
  '/activities',
];

describe.each(DIALECTS)('MENTOR_READ_TOKEN (%s)', (dialect) => {
  let m: MentorFixture | undefined;
  afterEach(async () => {
    await m?.close();
    m = undefined;
  });

  it('guards every read route and leaves ingest alone', async () => {
    m = await startMentorFixture(dialect, { MENTOR_READ_TOKEN: TOKEN });
    expect((await m.post('/devices/register', fixtures.registration('dev-1'))).status).toBe(200);
    expect((await m.post('/devices/metrics', fixtures.metric('dev-1'))).status).toBe(200);
    for (const p of READS) {
      const none = await fetch(m.url + p);
      expect(none.status, p).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(none.headers.get('content-type')).toContain('application/problem+json');
      const text = await none.text();
      expect(text).not.toContain(TOKEN);
      expect((await fetch(m.url + p, { headers: { authorization: 'Bearer wrong' } })).status, p).toBe(401);
      expect((await fetch(m.url + p, { headers: { authorization: `Bearer ${TOKEN}` } })).status, p).toBe(200);
    }
    const metrics = await fetch(`${m.url}/devices/dev-1/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(await metrics.json()).toHaveLength(1);
    // Operations endpoints are not the read API.
    expect((await fetch(`${m.url}/health`)).status).toBe(200);
  });

  it('without it the read API stays open', async () => {
    m = await startMentorFixture(dialect);
    expect((await fetch(`${m.url}/devices`)).status).toBe(200);
  });
});

describe('the warning for a mentor exposed without MENTOR_READ_TOKEN', () => {
  async function warnings(env: Record<string, string>, host: string) {
    const lines: Array<{ level: number; msg: string }> = [];
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(l));
        cb();
      },
    });
    const database = createSqliteUrl();
    const config = loadConfig('mentor', { DATABASE_URL: database.url, PORT: '0', ...env });
    const running = await startMentorHost(config, { host, logger: createLogger({ service: 'mentor', level: 'info', destination }) });
    await running.close();
    await database.drop();
    return lines.filter((l) => l.level === 40 && /MENTOR_READ_TOKEN/.test(l.msg));
  }

  it('is logged once on a non-loopback address, not on loopback nor with the token', async () => {
    expect(await warnings({}, '0.0.0.0')).toHaveLength(1);
    expect(await warnings({}, '127.0.0.1')).toHaveLength(0);
    expect(await warnings({ MENTOR_READ_TOKEN: TOKEN }, '0.0.0.0')).toHaveLength(0);
  });
});
