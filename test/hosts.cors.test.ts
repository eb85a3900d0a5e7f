/**
 * CORS_ORIGINS on both hosts (issue 15): preflights for the routes' real methods and headers with a max age,
 * a listed origin echoed on every answer (errors too), other origins refused, `*` never with credentials,
 * and no CORS headers at all when unset. CORS does not depend on the database, so SQLite only.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { runDemo } from '../hosts/demo.js';
import { ConfigError, loadConfig } from '../hosts/shared/config.js';
import { startDevices } from './devices.fixture.js';
import type { DevicesFixture } from './devices.fixture.js';
import { startMentorFixture } from './helpers/mentor.js';
import type { MentorFixture } from './helpers/mentor.js';

const APP = 'http://app.example.test:5173';
const HEADERS = [
  'content-type',
  'authorization',
  'idempotency-key',
  'webhook-id',
  'webhook-timestamp',
  'webhook-signature',
  'x-request-id',
];

function preflight(url: string, origin: string, method = 'POST', headers = 'content-type, authorization') {
  return fetch(url, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': method, 'access-control-request-headers': headers },
  });
}

const list = (v: string | null) => (v ?? '').split(',').map((s) => s.trim().toLowerCase());

function expectNoCors(res: Response) {
  for (const name of res.headers.keys()) expect(name, name).not.toMatch(/^access-control-/);
}

const hosts = [
  {
    name: 'devices',
    methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
    write: '/api/v1/devices/register',
    missing: '/api/v1/devices/nope',
    async start(env: Record<string, string>) {
      const f: DevicesFixture = await startDevices('sqlite', { env });
      return { url: f.host.url, close: () => f.cleanup() };
    },
  },
  {
    name: 'mentor',
    methods: ['GET', 'HEAD', 'POST'],
    write: '/devices/commands',
    missing: '/devices/nope',
    async start(env: Record<string, string>) {
      const m: MentorFixture = await startMentorFixture('sqlite', env);
      return { url: m.url, close: () => m.close() };
    },
  },
] as const;

describe.each(hosts)('CORS on the $name host', (h) => {
  let running: { url: string; close(): Promise<void> } | undefined;
  afterEach(async () => {
    await running?.close();
    running = undefined;
  });

  it('answers preflights of a listed origin for the real methods and headers, with a max age and no credentials', async () => {
    running = await h.start({ CORS_ORIGINS: `${APP}, https://dash.example.test/` });
    const res = await preflight(running.url + h.write, APP, 'POST', HEADERS.join(', '));
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe(APP);
    expect(list(res.headers.get('access-control-allow-methods'))).toEqual(h.methods.map((m) => m.toLowerCase()));
    expect(list(res.headers.get('access-control-allow-headers')).sort()).toEqual([...HEADERS].sort());
    expect(res.headers.get('access-control-max-age')).toBe('7200');
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    expect(list(res.headers.get('vary'))).toContain('origin');
    // The second listed origin, as a browser sends it (no trailing slash).
    const other = await preflight(running.url + h.write, 'https://dash.example.test');
    expect(other.headers.get('access-control-allow-origin')).toBe('https://dash.example.test');
  });

  it('lets the listed origin read answers, errors included, and their request id', async () => {
    running = await h.start({ CORS_ORIGINS: APP });
    const res = await fetch(running.url + h.missing, { headers: { origin: APP, 'x-request-id': 'trace-cors-1' } });
    expect(res.status).toBe(404);
    expect(res.headers.get('access-control-allow-origin')).toBe(APP);
    expect(list(res.headers.get('access-control-expose-headers'))).toContain('x-request-id');
    expect(res.headers.get('x-request-id')).toBe('trace-cors-1');
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
  });

  it('gives an unlisted origin no Access-Control-Allow-* headers, so its browser refuses', async () => {
    running = await h.start({ CORS_ORIGINS: APP });
    const pre = await preflight(running.url + h.write, 'http://evil.example.test');
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    const get = await fetch(`${running.url}/health`, { headers: { origin: 'http://app.example.test:5174' } });
    expect(get.status).toBe(200);
    expect(get.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('with CORS_ORIGINS=*, allows any origin and still never credentials', async () => {
    running = await h.start({ CORS_ORIGINS: '*' });
    const pre = await preflight(running.url + h.write, 'http://anything.example.test', 'POST', 'content-type, authorization');
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-credentials')).toBeNull();
    const get = await fetch(`${running.url}/health`, { headers: { origin: 'http://anything.example.test' } });
    expect(get.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('without CORS_ORIGINS, sends no CORS headers at all (as before)', async () => {
    running = await h.start({});
    const pre = await preflight(running.url + h.write, APP);
    expectNoCors(pre);
    const get = await fetch(`${running.url}/health`, { headers: { origin: APP } });
    expect(get.status).toBe(200);
    expectNoCors(get);
  });
});

describe('CORS under npm start (the demo)', () => {
  async function demoPreflight(env: Record<string, string>) {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'relay-cors-demo-'));
    const demo = await runDemo({
      devicesPort: 0,
      mentorPort: 0,
      host: '127.0.0.1',
      env: { DATA_DIR: dataDir, LOG_LEVEL: 'silent', ...env },
      out: new Writable({ write: (_c, _e, done) => done() }),
    });
    try {
      const loopback = (u: string) => u.replace('//localhost:', '//127.0.0.1:');
      const devices = await preflight(`${loopback(demo.devicesUrl)}/api/v1/devices/register`, APP);
      const mentor = await preflight(`${loopback(demo.mentorUrl)}/devices/commands`, APP);
      return [devices.headers.get('access-control-allow-origin'), mentor.headers.get('access-control-allow-origin')];
    } finally {
      await demo.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }

  it('allows any origin by default, and CORS_ORIGINS still decides when given', async () => {
    expect(await demoPreflight({})).toEqual(['*', '*']);
    expect(await demoPreflight({ CORS_ORIGINS: APP })).toEqual([APP, APP]);
    expect(await demoPreflight({ CORS_ORIGINS: '' })).toEqual([null, null]);
  });
});

describe('CORS_ORIGINS configuration', () => {
  it('reduces each entry to its origin and accepts * alone', () => {
    expect(loadConfig('devices', { CORS_ORIGINS: 'HTTP://App.Example.test:80/, https://x.test:8443' }).corsOrigins).toEqual([
      'http://app.example.test',
      'https://x.test:8443',
    ]);
    expect(loadConfig('mentor', { CORS_ORIGINS: ' * ' }).corsOrigins).toBe('*');
    expect(loadConfig('mentor', { CORS_ORIGINS: '' }).corsOrigins).toBeUndefined();
    expect(loadConfig('mentor', {}).corsOrigins).toBeUndefined();
  });

  it('stops start-up naming the variable for anything that is not an origin', () => {
    for (const bad of [
      'app.example.test',
      'https://x.test/path',
      'ftp://x.test',
      'https://x.test?q=1',
      '*, https://x.test',
      'https://u:p@x.test',
    ]) {
      expect(() => loadConfig('devices', { CORS_ORIGINS: bad }), bad).toThrow(ConfigError);
      expect(() => loadConfig('devices', { CORS_ORIGINS: bad }), bad).toThrow(/CORS_ORIGINS must be \* or comma-separated origins/);
    }
  });
});
