/** Mentor ingest: every forward is stored once per origin record id, whole or not at all. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DIALECTS } from './helpers/db.js';
import { fixtures, startMentorFixture } from './helpers/mentor.js';
import type { MentorFixture } from './helpers/mentor.js';

const KINDS = [
  { path: '/devices/metrics', list: 'metrics', key: 'metricid', make: fixtures.metric },
  { path: '/devices/activity', list: 'activities', key: 'activityid', make: fixtures.activity },
  { path: '/devices/alerts', list: 'alerts', key: 'alertid', make: fixtures.alert },
  { path: '/devices/screenshots', list: 'screenshots', key: 'screenshotid', make: fixtures.screenshot },
] as const;

describe.each(DIALECTS)('mentor ingest (%s)', (dialect) => {
  let m: MentorFixture;
  beforeEach(async () => {
    m = await startMentorFixture(dialect);
    expect((await m.post('/devices/register', fixtures.registration('dev-1'))).status).toBe(200);
  });
  afterEach(async () => {
    await m.close();
  });

  describe.each(KINDS)('$path', ({ path, list, key, make }) => {
    it('stores a single record once however often it is forwarded', async () => {
      const record = make('dev-1');
      const first = await m.post(path, record);
      expect(first.status).toBe(200);
      expect(first.body).toMatchObject({ status: 'ok', received: 1, stored: 1, duplicates: 0 });
      const again = await m.post(path, record);
      expect(again.status).toBe(200);
      expect(again.body).toMatchObject({ received: 1, stored: 0, duplicates: 1 });

      const rows = (await m.get(`/devices/dev-1/${list}`)).body as Array<Record<string, unknown>>;
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ ...record, [key]: record[key as keyof typeof record] });
    });

    it('stores a batch once, skipping records already stored and duplicates inside the batch', async () => {
      const a = make('dev-1');
      const b = make('dev-1');
      const c = make('dev-1');
      expect((await m.post(path, [a, b])).body).toMatchObject({ received: 2, stored: 2 });
      const r = await m.post(path, [a, b, c, c]);
      expect(r.status).toBe(200);
      expect(r.body).toMatchObject({ received: 4, stored: 1, duplicates: 3 });
      const ids = ((await m.get(`/devices/dev-1/${list}`)).body as Array<Record<string, string>>).map((x) => x[key]).sort();
      expect(ids).toEqual([a, b, c].map((x) => x[key as keyof typeof x]).sort());
    });

    it('stores nothing from a batch with one invalid record and names the field', async () => {
      const good = make('dev-1');
      const bad = make('dev-1', { deviceid: 'not a device id!' });
      const r = await m.post(path, [good, bad]);
      expect(r.status).toBe(422);
      expect(r.contentType).toContain('application/problem+json');
      expect(r.body.errors).toEqual([expect.objectContaining({ path: '[1].deviceid' })]);
      expect((await m.get(`/devices/dev-1/${list}`)).body).toEqual([]);
    });

    it('requires the origin record id', async () => {
      const { [key as keyof ReturnType<typeof make>]: _omit, ...noId } = make('dev-1');
      const r = await m.post(path, noId);
      expect(r.status).toBe(422);
      expect(r.body.errors.map((e: { path: string }) => e.path)).toEqual([key]);
    });
  });

  it('accepts alerts on /devices/{id}/alerts with the device taken from the path', async () => {
    const { deviceid: _d, ...alert } = fixtures.alert('dev-1');
    const r = await m.post('/devices/dev-1/alerts', [alert]);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ stored: 1 });
    const rows = (await m.get('/devices/dev-1/alerts')).body as Array<Record<string, unknown>>;
    expect(rows[0]).toMatchObject({ alertid: alert.alertid, deviceid: 'dev-1' });

    const other = await m.post('/devices/dev-1/alerts', fixtures.alert('dev-2'));
    expect(other.status).toBe(422);
    expect(other.body.errors).toEqual([expect.objectContaining({ path: 'deviceid' })]);
  });

  it('keeps numbers and times exact on the way back', async () => {
    const metric = fixtures.metric('dev-1', { memory_total: 68_719_476_736, cpu_usage: 12.25, cpu_temp: null });
    await m.post('/devices/metrics', metric);
    const [row] = (await m.get('/devices/dev-1/metrics')).body as Array<Record<string, unknown>>;
    expect(row).toMatchObject({ memory_total: 68_719_476_736, cpu_usage: 12.25, cpu_temp: null, timestamp: metric.timestamp });
  });

  it('accepts records of a device it has not seen register (forwards are not strictly ordered)', async () => {
    const r = await m.post('/devices/metrics', fixtures.metric('late-device'));
    expect(r.status).toBe(200);
    expect((await m.get('/devices/late-device/metrics')).body).toHaveLength(1);
  });

  it('answers bad input with precise problems and stores nothing', async () => {
    const malformed = await m.post('/devices/metrics', '{"metricid": ');
    expect(malformed.status).toBe(400);
    expect(malformed.contentType).toContain('application/problem+json');
    expect(malformed.body).toMatchObject({ status: 400, title: 'Bad Request' });

    const wrongType = await m.post('/devices/metrics', 'metricid=1', { headers: { 'content-type': 'text/plain' } });
    expect(wrongType.status).toBe(415);

    const outOfRange = await m.post('/devices/metrics', fixtures.metric('dev-1', { cpu_usage: 101, memory_used: -1 }));
    expect(outOfRange.status).toBe(422);
    expect(outOfRange.body.errors.map((e: { path: string }) => e.path).sort()).toEqual(['cpu_usage', 'memory_used']);

    const badTime = await m.post('/devices/activity', fixtures.activity('dev-1', { timestamp: 'yesterday' }));
    expect(badTime.status).toBe(422);
    expect(badTime.body.errors).toEqual([expect.objectContaining({ path: 'timestamp' })]);

    const nul = await m.post('/devices/activity', fixtures.activity('dev-1', { description: 'a\u0000b' }));
    expect(nul.status).toBe(422);
    expect(nul.body.errors).toEqual([expect.objectContaining({ path: 'description' })]);

    const notRecords = await m.post('/devices/metrics', [1, 'two']);
    expect(notRecords.status).toBe(422);
    expect(notRecords.body.errors.map((e: { path: string }) => e.path)).toEqual(['[0]', '[1]']);

    const tooBig = await m.post('/devices/activity', fixtures.activity('dev-1', { description: 'x'.repeat(2 * 1024 * 1024) }));
    expect(tooBig.status).toBe(413);

    expect((await m.get('/devices/dev-1/metrics')).body).toEqual([]);
    expect((await m.get('/devices/dev-1/activities')).body).toEqual([]);
  });
});
