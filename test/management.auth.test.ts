import { afterEach, describe, expect, it } from 'vitest';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { tokensEqual } from '../lib/http/auth.js';
import { MANAGEMENT_PATHS, managementDocs, managementPaths, managementRouter } from '../lib/http/management.js';
import type { ManagementExtension } from '../lib/http/management.js';
import { problemHandler, routeNotFound } from '../lib/http/problem.js';
import type { Relay } from '../lib/relay.js';
import { webhooksManagement } from '../plugins/webhooks/index.js';
import { DIALECTS } from './helpers/db.js';
import { ADMIN_TOKEN, webhookFixture } from './helpers/webhooks.js';
import type { WebhookFixture } from './helpers/webhooks.js';

const PATHS: Array<[string, string]> = [
  ['GET', '/webhooks'],
  ['POST', '/webhooks'],
  ['GET', '/webhooks/wh_x'],
  ['GET', '/webhooks/wh_x/secret'],
  ['POST', '/webhooks/wh_x/rotate-secret'],
  ['GET', '/deliveries'],
  ['GET', '/deliveries/1'],
  ['POST', '/deliveries/1/retry'],
  ['POST', '/deliveries/recover'],
  ['POST', '/reconcile'],
];

describe('tokensEqual', () => {
  it('compares whole tokens of any length', () => {
    expect(tokensEqual('abc', 'abc')).toBe(true);
    expect(tokensEqual('abc', 'abd')).toBe(false);
    expect(tokensEqual('abc', 'abcd')).toBe(false);
    expect(tokensEqual('', 'a')).toBe(false);
  });
});

describe.each(DIALECTS)('management API authentication (%s)', (dialect) => {
  let f: WebhookFixture;
  let server: Server | null = null;
  afterEach(async () => {
    if (server) await new Promise<void>((r) => server!.close(() => r()));
    server = null;
    await f?.cleanup();
  });

  const call = (method: string, path: string, authorization?: string) =>
    f.api(method, path, method === 'POST' ? {} : undefined, authorization === undefined ? { authorization: '' } : { authorization });

  it.each([
    ['no Authorization header', undefined],
    ['a wrong token', `Bearer ${ADMIN_TOKEN}x`],
    ['a prefix of the token', `Bearer ${ADMIN_TOKEN.slice(0, -1)}`],
    ['the token in the Basic scheme', `Basic ${Buffer.from(`admin:${ADMIN_TOKEN}`).toString('base64')}`],
    ['the token with another scheme name', `Token ${ADMIN_TOKEN}`],
    ['the bare token', ADMIN_TOKEN],
    ['Bearer with no token', 'Bearer '],
  ])('answers 401 with WWW-Authenticate to %s on every route', async (_label, authorization) => {
    f = await webhookFixture(dialect, { paused: true });
    for (const [method, path] of PATHS) {
      const r = await call(method, path, authorization);
      expect(r.status, `${method} ${path}`).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer realm="raqeem-relay"/);
      expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(r.text).not.toContain(ADMIN_TOKEN);
    }
  });

  it('accepts the right token, with the scheme in any case', async () => {
    f = await webhookFixture(dialect, { paused: true });
    expect((await call('GET', '/webhooks', `Bearer ${ADMIN_TOKEN}`)).status).toBe(200);
    expect((await call('GET', '/deliveries', `bearer ${ADMIN_TOKEN}`)).status).toBe(200);
  });

  it('answers 503 saying how to enable the API when no token is configured', async () => {
    f = await webhookFixture(dialect, { paused: true, router: { adminToken: undefined } });
    for (const [method, path] of PATHS) {
      const r = await call(method, path, 'Bearer anything');
      expect(r.status, `${method} ${path}`).toBe(503);
      expect(r.body.detail).toMatch(/set RELAY_ADMIN_TOKEN/);
    }
  });

  it('guards only its own paths, so device routes under the same prefix stay open', async () => {
    f = await webhookFixture(dialect, { paused: true });
    const app = express();
    app.use(
      '/api/v1',
      managementRouter({
        relay: f.relay,
        adminToken: ADMIN_TOKEN,
        extensions: [webhooksManagement({ webhooks: f.webhooks, relay: f.relay })],
      }),
    );
    app.get('/api/v1/devices', (_req, res) => void res.json({ devices: [] }));
    app.use(routeNotFound);
    app.use(problemHandler());
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1`;
    expect((await fetch(`${base}/devices`)).status).toBe(200);
    expect((await fetch(`${base}/nothing-here`)).status).toBe(404);
    expect((await fetch(`${base}/webhooks`)).status).toBe(401);
  });

  it('answers every route its OpenAPI descriptors document (and needs the token for each)', async () => {
    f = await webhookFixture(dialect, { paused: true });
    const docs = managementDocs([webhooksManagement({ webhooks: f.webhooks, relay: f.relay })]);
    expect(docs.length).toBeGreaterThanOrEqual(13);
    for (const d of docs) {
      const path = d.path.replace(':id', d.path.startsWith('/deliveries') ? '424242' : 'wh_unknown');
      const method = d.method.toUpperCase();
      const r = await f.api(method, path, ['POST', 'PATCH'].includes(method) ? {} : undefined);
      expect(r.body?.detail ?? '', `${method} ${path}`).not.toMatch(/^Route not found/);
      expect(d.auth).toBe(true);
      expect((await call(method, path, undefined)).status, `${method} ${path}`).toBe(401);
    }
  });
});

describe('management extensions', () => {
  let server: Server | null = null;
  afterEach(async () => {
    if (server) await new Promise<void>((r) => server!.close(() => r()));
    server = null;
  });

  // Any plugin's routes, not only the webhooks': the router knows nothing about them but their paths.
  const things: ManagementExtension = {
    paths: ['/things'],
    router: express.Router().post('/things', (req, res) => void res.status(201).json({ echoed: req.body as unknown })),
    docs: [{ method: 'post', path: '/things', summary: 'Make a thing', responses: { '201': { description: 'Made' } } }],
  };

  it('get the admin authentication and the JSON parser of the core routes', async () => {
    const app = express();
    // The core routes touch the relay only when called.
    app.use('/api/v1', managementRouter({ relay: {} as Relay, adminToken: ADMIN_TOKEN, extensions: [things] }));
    app.use(routeNotFound);
    app.use(problemHandler());
    server = await new Promise<Server>((resolve) => {
      const s = app.listen(0, '127.0.0.1', () => resolve(s));
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1/things`;
    const post = (headers: Record<string, string>) =>
      fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"a":1}' });
    expect((await post({})).status).toBe(401);
    expect((await post({ authorization: 'Bearer nope' })).status).toBe(401);
    const ok = await post({ authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(ok.status).toBe(201);
    expect(await ok.json()).toEqual({ echoed: { a: 1 } });
  });

  it('are listed in the guarded paths and their docs are merged, marked as needing the token', () => {
    expect(managementPaths([things])).toEqual(['/things', ...MANAGEMENT_PATHS]);
    const docs = managementDocs([things]);
    const doc = docs.find((d) => d.path === '/things')!;
    expect(doc.auth).toBe(true);
    expect(doc.tags).toEqual(['management']);
    expect(Object.keys(doc.responses).sort()).toEqual(['201', '401', '403', '503']);
    expect(docs.length).toBe(managementDocs().length + 1);
  });
});
