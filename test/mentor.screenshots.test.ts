/**
 * Screenshots a dashboard can show (issue 15): records forwarded with their image, stored once, listed with
 * `url` / `screenshot_url`, and served by the mentor as an image; signed links when MENTOR_READ_TOKEN is set;
 * the devices host forwarding the image of an upload; bad images refused whole. Both dialects.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { screenshotLinks } from '../hosts/mentor/screenshotLinks.js';
import { DIALECTS } from './helpers/db.js';
import { fixtures, startMentorFixture } from './helpers/mentor.js';
import type { MentorFixture } from './helpers/mentor.js';
import { solidPng } from './helpers/png.js';
import { eventually } from './helpers/sink.js';
import { imageForm, startDevices } from './devices.fixture.js';
import type { DevicesFixture } from './devices.fixture.js';

const TOKEN = 'mentor-read-token-for-screenshot-tests';
const PNG = solidPng(3, 2);
const withImage = (deviceid: string, bytes: Buffer, extra: Record<string, unknown> = {}) =>
  fixtures.screenshot(deviceid, { image_base64: bytes.toString('base64'), content_type: 'image/jpeg', ...extra });

type Rec = Record<string, unknown>;

async function imageAt(url: string, headers: Record<string, string> = {}) {
  const res = await fetch(url, { headers });
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}

describe.each(DIALECTS)('mentor screenshots (%s)', (dialect) => {
  let m: MentorFixture | undefined;
  let d: DevicesFixture | undefined;
  afterEach(async () => {
    await d?.cleanup();
    await m?.close();
    m = undefined;
    d = undefined;
  });

  it('stores a forwarded image once and serves it at the url every screenshot record carries', async () => {
    m = await startMentorFixture(dialect);
    await m.post('/devices/register', fixtures.registration('dev-1'));
    const shot = withImage('dev-1', PNG);
    expect((await m.post('/devices/screenshots', shot)).body).toMatchObject({ stored: 1, duplicates: 0 });
    expect((await m.post('/devices/screenshots', shot)).body).toMatchObject({ stored: 0, duplicates: 1 });
    const metadata = fixtures.screenshot('dev-1', { path: 'shots/elsewhere.png', timestamp: '2020-01-01T00:00:00Z' });
    const remote = fixtures.screenshot('dev-1', { path: 'https://cdn.example.com/s/1.png', timestamp: '2020-01-01T00:00:01Z' });
    expect((await m.post('/devices/screenshots', [metadata, remote])).body).toMatchObject({ stored: 2 });

    const list = (await m.get('/devices/dev-1/screenshots')).body as Rec[];
    expect(list).toHaveLength(3);
    const [first, second, third] = list;
    const url = `${m.url}/screenshots/${encodeURIComponent(shot.screenshotid)}`;
    // The stored content type is what the bytes are, not what was declared.
    expect(first).toMatchObject({ screenshotid: shot.screenshotid, content_type: 'image/png', url, screenshot_url: url });
    expect(first).not.toHaveProperty('image_base64');
    expect(second).toMatchObject({ url: remote.path, screenshot_url: remote.path });
    expect(third).toMatchObject({ screenshotid: metadata.screenshotid, url: null, screenshot_url: null });

    const img = await imageAt(url);
    expect(img.status).toBe(200);
    expect(img.headers.get('content-type')).toBe('image/png');
    expect(img.headers.get('x-content-type-options')).toBe('nosniff');
    expect(img.headers.get('cache-control')).toBe('private, max-age=86400, immutable');
    expect(img.headers.get('cross-origin-resource-policy')).toBe('cross-origin');
    expect(img.bytes.equals(PNG)).toBe(true);

    // A record the mentor holds without its image (forwarded before images were) gains it from a later forward.
    const bare = fixtures.screenshot('dev-1', { timestamp: '2019-01-01T00:00:00Z' });
    await m.post('/devices/screenshots', bare);
    const before = ((await m.get('/devices/dev-1/screenshots')).body as Rec[]).find((r) => r.screenshotid === bare.screenshotid);
    expect(before!.url).toBeNull();
    expect((await m.post('/devices/screenshots', { ...bare, image_base64: PNG.toString('base64') })).body).toMatchObject({ duplicates: 1 });
    const after = ((await m.get('/devices/dev-1/screenshots')).body as Rec[]).find((r) => r.screenshotid === bare.screenshotid);
    expect((await imageAt(String(after!.url))).bytes.equals(PNG)).toBe(true);

    const missing = await fetch(`${m.url}/screenshots/${encodeURIComponent(metadata.screenshotid)}`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('content-type')).toContain('application/problem+json');
  });

  it('gives devices an id beside deviceid in read answers', async () => {
    m = await startMentorFixture(dialect);
    await m.post('/devices/register', fixtures.registration('dev-1'));
    expect((await m.get('/devices')).body).toEqual([expect.objectContaining({ id: 'dev-1', deviceid: 'dev-1' })]);
    expect((await m.get('/devices/dev-1')).body).toMatchObject({ id: 'dev-1', deviceid: 'dev-1' });
  });

  it('refuses a bad image with a problem naming it and stores nothing of the request', async () => {
    m = await startMentorFixture(dialect, { SCREENSHOT_MAX_BYTES: '4kb', BODY_LIMIT: '2kb' });
    await m.post('/devices/register', fixtures.registration('dev-1'));
    const cases: Array<[unknown, number, string]> = [
      [withImage('dev-1', Buffer.from('not an image at all')), 422, 'image_base64'],
      [{ ...fixtures.screenshot('dev-1'), image_base64: 'a$b=' }, 422, 'image_base64'],
      [{ ...fixtures.screenshot('dev-1'), image_base64: 'abc' }, 422, 'image_base64'],
      [[withImage('dev-1', PNG), withImage('dev-1', Buffer.from('GIF89a'))], 422, '[1].image_base64'],
      [withImage('dev-1', Buffer.concat([PNG, randomBytes(5000)])), 413, 'image_base64'],
    ];
    for (const [body, status, path] of cases) {
      const r = await m.post('/devices/screenshots', body);
      expect(r.status, JSON.stringify(r.body)).toBe(status);
      expect(r.contentType).toContain('application/problem+json');
      expect(r.body.errors).toEqual([expect.objectContaining({ path })]);
    }
    expect((await m.get('/devices/dev-1/screenshots')).body).toEqual([]);
    // Past BODY_LIMIT (2 KiB) but within one image's allowance: a record with a 3 KiB image is stored.
    const big = withImage('dev-1', Buffer.concat([PNG, randomBytes(3000)]));
    expect((await m.post('/devices/screenshots', big)).status).toBe(200);
    // The allowance is for the image only: the rest of a screenshot body, and other routes, keep BODY_LIMIT.
    const padded = await m.post('/devices/screenshots', { ...withImage('dev-1', PNG), pad: 'x'.repeat(3000) });
    expect(padded.status).toBe(413);
    expect(padded.body.detail).toContain('BODY_LIMIT');
    expect((await m.post('/devices/metrics', fixtures.metric('dev-1', { pad: 'x'.repeat(3000) }))).status).toBe(413);
  });

  it('with MENTOR_READ_TOKEN, hands out signed short-lived links an <img> can open', async () => {
    m = await startMentorFixture(dialect, { MENTOR_READ_TOKEN: TOKEN });
    await m.post('/devices/register', fixtures.registration('dev-1'));
    const shot = withImage('dev-1', PNG);
    await m.post('/devices/screenshots', shot);
    expect((await m.get('/devices/dev-1/screenshots')).status).toBe(401);
    const listed = await fetch(`${m.url}/devices/dev-1/screenshots`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const [record] = (await listed.json()) as Array<{ url: string; screenshot_url: string }>;
    const url = new URL(record!.url);
    expect(record!.screenshot_url).toBe(record!.url);
    expect(url.origin + url.pathname).toBe(`${m.url}/screenshots/${encodeURIComponent(shot.screenshotid)}`);
    expect(record!.url).not.toContain(TOKEN);
    const expires = Number(url.searchParams.get('expires'));
    expect(expires * 1000).toBeGreaterThan(Date.now() + 3_500_000);
    expect(url.searchParams.get('sig')).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // No Authorization header, as an <img> sends it.
    const ok = await imageAt(record!.url);
    expect(ok.status).toBe(200);
    expect(ok.bytes.equals(PNG)).toBe(true);
    const maxAge = Number(/max-age=(\d+)/.exec(ok.headers.get('cache-control') ?? '')?.[1]);
    expect(maxAge).toBeGreaterThan(0);
    expect(maxAge).toBeLessThanOrEqual(3600 + 900);

    const base = `${m.url}/screenshots/${encodeURIComponent(shot.screenshotid)}`;
    const tampered = new URL(record!.url);
    tampered.searchParams.set('expires', String(expires + 86_400));
    const otherImage = new URL(record!.url.replace(encodeURIComponent(shot.screenshotid), 'another-id'));
    // A link handed out three hours ago, and one signed with another token's key.
    const expired = m.url + screenshotLinks(TOKEN).path(shot.screenshotid, Date.now() - 3 * 3600_000);
    const foreign = m.url + screenshotLinks('another-token').path(shot.screenshotid);
    for (const [bad, detail] of [
      [base, /Authentication required/],
      [tampered.toString(), /not valid/],
      [otherImage.toString(), /not valid/],
      [expired, /expired/],
      [foreign, /not valid/],
      [`${base}?expires=abc&sig=x`, /not valid/],
    ] as const) {
      const r = await fetch(bad);
      expect(r.status, bad).toBe(401);
      const text = await r.text();
      expect(JSON.parse(text).detail).toMatch(detail);
      expect(text).not.toContain(TOKEN);
    }
    // The bearer token opens it too (a client that can send headers).
    expect((await imageAt(base, { authorization: `Bearer ${TOKEN}` })).status).toBe(200);
    expect((await imageAt(base, { authorization: 'Bearer wrong' })).status).toBe(401);
  });

  it('builds links on MENTOR_PUBLIC_URL when the mentor sits behind a proxy', async () => {
    m = await startMentorFixture(dialect, { MENTOR_PUBLIC_URL: 'https://dash.example.com/api/' });
    const shot = withImage('dev-1', PNG);
    await m.post('/devices/screenshots', shot);
    const [record] = (await m.get('/devices/dev-1/screenshots')).body as Rec[];
    expect(record!.url).toBe(`https://dash.example.com/api/screenshots/${shot.screenshotid}`);
  });

  it('receives the image of an upload from the devices host with its record (metadata-only records without)', async () => {
    m = await startMentorFixture(dialect);
    d = await startDevices(dialect, { env: { MENTOR_API_URL: m.url } });
    expect((await d.call('POST', '/devices/register', { deviceid: 'dev-1' })).status).toBe(200);
    const image = solidPng(4, 4, [10, 120, 200]);
    const up = await d.call('POST', '/devices/dev-1/screenshots', imageForm(image, { resolution: '4x4' }));
    expect(up.status).toBe(201);
    const meta = await d.call('POST', '/devices/dev-1/screenshots', { path: '../../etc/passwd', size: 10 });
    expect(meta.status).toBe(201);
    const fixture = m;
    const list = await eventually(async () => {
      const l = (await fixture.get('/devices/dev-1/screenshots')).body as Rec[];
      return l.length === 2 ? l : null;
    });
    const uploaded = list.find((r) => r.screenshotid === up.json.screenshotid)!;
    const metadata = list.find((r) => r.screenshotid === meta.json.screenshotid)!;
    expect(uploaded).toMatchObject({ resolution: '4x4', content_type: 'image/png', size: image.length });
    expect(metadata).toMatchObject({ path: '../../etc/passwd', url: null });
    const img = await imageAt(String(uploaded.url));
    expect(img.status).toBe(200);
    expect(img.bytes.equals(image)).toBe(true);
  });
});
