/**
 * The devices host's HTTP edges (issue 11, item 3), on a whole host over both dialects: management routes
 * authenticate before reading a body, control characters and invalid UTF-8 are client errors that store
 * nothing, security headers on every answer, client errors Node answers itself as problem+json, the server
 * timeouts cut slow clients, the per-device rate limit, webhook URLs with port 0.
 */
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { DIALECTS } from './helpers/db.js';
import { startDevices } from './devices.fixture.js';
import type { DevicesFixture } from './devices.fixture.js';

const ADMIN = 'edges-admin-token-0123456789abcdef';
const auth = { authorization: `Bearer ${ADMIN}` };

/** Send raw bytes on one connection; resolves with everything the server wrote once it closes the socket. */
function rawExchange(url: string, chunks: Array<string | Buffer>): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname);
    let out = '';
    socket.on('data', (d) => (out += d.toString('latin1')));
    socket.on('error', reject);
    socket.on('close', () => resolve(out));
    socket.on('connect', () => {
      for (const c of chunks) socket.write(c);
    });
  });
}

const isProblem = (r: { status: number; headers: Headers }, status: number) => {
  expect(r.status).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
};

describe.each(DIALECTS)('HTTP edges (%s)', (dialect) => {
  let f: DevicesFixture | undefined;
  afterEach(async () => {
    await f?.cleanup();
    f = undefined;
  });

  it('authenticates management routes before reading the body', async () => {
    f = await startDevices(dialect, { env: { RELAY_ADMIN_TOKEN: ADMIN, BODY_LIMIT: '1kb' } });
    const headers = { 'content-type': 'application/json' };
    isProblem(await f.call('POST', '/webhooks', '{not json', { headers }), 401);
    isProblem(await f.call('POST', '/webhooks', JSON.stringify({ description: 'x'.repeat(4096) }), { headers }), 401);
    isProblem(await f.call('POST', '/deliveries/recover', '{', { headers }), 401);
    // Upper case routes the same in Express: still authenticated first.
    isProblem(await f.call('POST', '/WEBHOOKS', '{', { headers }), 401);
    // With the token the same bodies are read and refused for what they are.
    isProblem(await f.call('POST', '/webhooks', '{not json', { headers: { ...headers, ...auth } }), 400);
    isProblem(
      await f.call('POST', '/webhooks', JSON.stringify({ description: 'x'.repeat(4096) }), { headers: { ...headers, ...auth } }),
      413,
    );
  });

  it('answers 422 naming the field to NUL and control characters in management queries and bodies, storing nothing', async () => {
    f = await startDevices(dialect, { env: { RELAY_ADMIN_TOKEN: ADMIN, WEBHOOK_ALLOWED_HOSTS: '127.0.0.1' } });
    for (const field of ['deviceid', 'target', 'webhook_id', 'event_type', 'cursor']) {
      for (const bad of ['%00', 'a%00b', '%1b[31m', '%7f', 'x%0ay']) {
        const r = await f.call('GET', `/deliveries?${field}=${bad}`, undefined, { headers: auth });
        isProblem(r, 422);
        expect(r.json.errors.map((e: { path: string }) => e.path)).toContain(field);
      }
    }
    for (const field of ['target', 'webhook_id']) {
      const r = await f.call('POST', '/deliveries/recover', { since: '2024-01-01T00:00:00Z', [field]: 'a\u0000' }, { headers: auth });
      isProblem(r, 422);
      expect(r.json.errors[0].path).toBe(field);
    }
    const url = 'http://127.0.0.1:9/hook';
    for (const [body, path] of [
      [{ url, events: ['*'], description: 'nul\u0000' }, 'description'],
      [{ url, events: ['*'], description: 'escape \u001b[2J' }, 'description'],
      [{ url: 'http://127.0.0.1:9/\u0000', events: ['*'] }, 'url'],
      [{ url, events: ['metric.\u0000'] }, 'events[0]'],
      [{ url: 'http://127.0.0.1:0/hook', events: ['*'] }, 'url'],
    ] as const) {
      const r = await f.call('POST', '/webhooks', body, { headers: auth });
      isProblem(r, 422);
      expect(r.json.errors.map((e: { path: string }) => e.path)).toContain(path);
    }
    expect(await f.count('relay_webhooks')).toBe(0);
    // Free text keeps its line breaks and tabs.
    const ok = await f.call('POST', '/webhooks', { url, events: ['*'], description: 'line one\n\tline two\r\n' }, { headers: auth });
    expect(ok.status).toBe(201);
    expect(ok.json.description).toBe('line one\n\tline two\r\n');
  });

  it('refuses control characters in device fields, keeping line breaks in free text', async () => {
    f = await startDevices(dialect);
    isProblem(await f.call('POST', '/devices/register', { deviceid: 'dev-c', device_name: 'a\u0007b' }), 422);
    isProblem(await f.call('POST', '/devices/register', { deviceid: 'dev-c', os: 'x\ny' }), 422);
    isProblem(await f.call('POST', '/devices/register', { deviceid: 'dev-c', os: 'lone \ud800 surrogate' }), 422);
    expect(await f.count('devices')).toBe(0);
    expect((await f.call('POST', '/devices/register', { deviceid: 'dev-c' })).status).toBe(200);
    expect((await f.call('POST', '/devices/dev-c/alerts', [{ level: 'info', alert_type: 't', message: 'two\nlines' }])).status).toBe(200);
    isProblem(await f.call('POST', '/devices/dev-c/alerts', [{ level: 'info', alert_type: 't', message: 'nul\u0000' }]), 422);
    expect(await f.count('alerts')).toBe(1);
  });

  it('answers 400 to a JSON body that is not UTF-8, storing nothing', async () => {
    f = await startDevices(dialect, { env: { RELAY_ADMIN_TOKEN: ADMIN } });
    const body = Buffer.concat([Buffer.from('{"deviceid":"dev-u","device_name":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]);
    const r = await f.call('POST', '/devices/register', new Uint8Array(body), { headers: { 'content-type': 'application/json' } });
    isProblem(r, 400);
    expect(r.json.detail).toMatch(/UTF-8/);
    expect(await f.count('devices')).toBe(0);
    // The management router's own parser does the same.
    const m = await f.call(
      'POST',
      '/deliveries/recover',
      new Uint8Array(Buffer.concat([Buffer.from('{"since":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}')])),
      {
        headers: { 'content-type': 'application/json', ...auth },
      },
    );
    isProblem(m, 400);
  });

  it('rate-limits one device with 429 and Retry-After when DEVICE_RATE_LIMIT is set', async () => {
    // One request per 1000 s: the second is refused whatever the machine's speed.
    f = await startDevices(dialect, { env: { DEVICE_RATE_LIMIT: '0.001' } });
    expect((await f.call('POST', '/devices/register', { deviceid: 'dev-r' })).status).toBe(200);
    expect((await f.call('POST', '/devices/register', { deviceid: 'dev-q' })).status).toBe(200);
    expect((await f.call('POST', '/devices/dev-r/metrics', { cpu_usage: 1 })).status).toBe(200);
    const limited = await f.call('POST', '/devices/dev-r/metrics', { cpu_usage: 2 });
    isProblem(limited, 429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // Other devices and reads are not affected.
    expect((await f.call('POST', '/devices/dev-q/metrics', { cpu_usage: 3 })).status).toBe(200);
    expect((await f.call('GET', '/devices/dev-r/metrics')).status).toBe(200);
    expect(await f.count('metrics')).toBe(2);
  });
});

describe('HTTP edges (whole host, sqlite)', () => {
  let f: DevicesFixture | undefined;
  afterEach(async () => {
    await f?.cleanup();
    f = undefined;
  });

  it('sends security headers on every answer, and screenshots inline with nosniff and our own file name', async () => {
    f = await startDevices('sqlite');
    for (const [p, root] of [
      ['/health', true],
      ['/openapi.json', true],
      ['/nothing-here', false],
      ['/devices', false],
    ] as const) {
      const r = await f.call('GET', p, undefined, { root });
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      expect(r.headers.get('content-security-policy')).toBe("default-src 'none'; frame-ancestors 'none'");
      expect(r.headers.get('referrer-policy')).toBe('no-referrer');
    }
    await f.call('POST', '/devices/register', { deviceid: 'dev-s' });
    const png = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(32)]);
    const form = new FormData();
    form.append('file', new Blob([png], { type: 'image/png' }), '"><script>.png');
    const up = await f.call('POST', '/devices/dev-s/screenshots', form);
    expect(up.status).toBe(201);
    const shot = await fetch(`${f.host.url}/api/v1/screenshots/${up.json.screenshotid}`);
    expect(shot.status).toBe(200);
    expect(shot.headers.get('x-content-type-options')).toBe('nosniff');
    expect(shot.headers.get('content-disposition')).toBe(`inline; filename="screenshot-${up.json.screenshotid}.png"`);
    await shot.arrayBuffer();
  });

  it('answers 431 and malformed requests as problem+json', async () => {
    f = await startDevices('sqlite');
    const big = await rawExchange(f.host.url, [`GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`]);
    expect(big).toMatch(/^HTTP\/1\.1 431 /);
    expect(big).toMatch(/content-type: application\/problem\+json/i);
    expect(JSON.parse(big.slice(big.indexOf('\r\n\r\n') + 4)).status).toBe(431);
    const bad = await rawExchange(f.host.url, ['GARBAGE\r\n\r\n']);
    expect(bad).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(bad.slice(bad.indexOf('\r\n\r\n') + 4))).toMatchObject({ status: 400, title: 'Bad Request' });
  });

  it('cuts a client that sends its headers too slowly, and one whose body stalls', async () => {
    f = await startDevices('sqlite', { env: { HTTP_HEADERS_TIMEOUT: '0.5', HTTP_REQUEST_TIMEOUT: '1' } });
    // Headers that never end: the server answers 408 and closes (this would hang for Node's 60 s otherwise).
    const slow = await rawExchange(f.host.url, ['POST /api/v1/devices/register HTTP/1.1\r\nHost: x\r\n']);
    expect(slow).toMatch(/^HTTP\/1\.1 408 /);
    expect(slow).toMatch(/application\/problem\+json/);
    // A body announced at 100 bytes of which 10 arrive.
    const stalled = await rawExchange(f.host.url, [
      'POST /api/v1/devices/register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"deviceid',
    ]);
    expect(stalled).toMatch(/^HTTP\/1\.1 408 /);
    expect(await f.count('devices')).toBe(0);
  }, 20_000);
});
