/**
 * The console's API side on a real devices host, both dialects: signing in exchanges the admin token for an
 * HttpOnly SameSite=Strict cookie, the management API takes the cookie (plus X-CSRF-Token on changes) as an
 * alternative to the bearer token, sign-out ends it; portal links open a session held to one endpoint, and
 * an expired or altered link is refused. Also `GET /` and `GET /api/v1/stats`.
 */
import { createHmac } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { ConsoleSessions } from '../lib/http/session.js';
import { DIALECTS } from './helpers/db.js';
import { CONSOLE_ADMIN_TOKEN, startConsoleHost } from './helpers/console.js';
import type { ConsoleHost } from './helpers/console.js';
import { startMentorFixture } from './helpers/mentor.js';
import { eventually, startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';

/** A portal token signed exactly as the host signs them, with claims of the test's choosing. */
function forgeToken(adminToken: string, claims: object): string {
  const key = createHmac('sha256', adminToken).update('raqeem-relay portal links v1').digest();
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `v1.${payload}.${createHmac('sha256', key).update(payload).digest('base64url')}`;
}

const tokenOf = (url: string) => new URL(url).hash.replace(/^#token=/, '');

describe('console sessions (unit)', () => {
  it('signs portal tokens, refuses altered and expired ones, and expires sessions', () => {
    let now = Date.parse('2026-01-01T00:00:00Z');
    const s = new ConsoleSessions({ adminToken: 'tok', now: () => now, adminTtlMs: 60_000 });
    const { token, expiresAt } = s.portalToken('wh_ABC', 120);
    expect(s.checkPortalToken(token)).toEqual({ ok: true, endpointId: 'wh_ABC', expiresAt });
    const [v, payload, mac] = token.split('.') as [string, string, string];
    const other = Buffer.from(JSON.stringify({ e: 'wh_XYZ', x: expiresAt / 1000 })).toString('base64url');
    expect(s.checkPortalToken(`${v}.${other}.${mac}`)).toEqual({ ok: false, reason: 'invalid' });
    expect(s.checkPortalToken(`${v}.${payload}.${mac.slice(0, -2)}AA`)).toEqual({ ok: false, reason: 'invalid' });
    expect(s.checkPortalToken('garbage')).toEqual({ ok: false, reason: 'invalid' });
    expect(new ConsoleSessions({ adminToken: 'another' }).checkPortalToken(token)).toEqual({ ok: false, reason: 'invalid' });
    now += 121_000;
    expect(s.checkPortalToken(token)).toMatchObject({ ok: false, reason: 'expired' });

    const session = s.create({ kind: 'admin' });
    expect(s.get(session.id)).toBe(session);
    now += 60_000;
    expect(s.get(session.id)).toBeUndefined();
    expect(new ConsoleSessions({ adminToken: undefined }).enabled).toBe(false);
  });
});

describe.each(DIALECTS)('console API (%s)', (dialect) => {
  let c: ConsoleHost;
  let sinks: Sink[] = [];
  afterEach(async () => {
    await c?.cleanup();
    for (const s of sinks) await s.close();
    sinks = [];
  });

  it('exchanges the admin token for a session cookie that the management API accepts, with CSRF on changes', async () => {
    c = await startConsoleHost(dialect);
    const wrong = await c.call('POST', '/console/session', { token: 'not-the-token' }, { bearer: null });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(wrong.body.detail).toMatch(/not the admin token/);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    expect((await c.call('POST', '/console/session', { nope: 1 }, { bearer: null })).status).toBe(422);

    const { cookie, csrf, answer } = await c.signIn({ token: CONSOLE_ADMIN_TOKEN });
    expect(answer.body).toMatchObject({ kind: 'admin', endpoint_id: null });
    const setCookie = answer.headers.get('set-cookie')!;
    expect(setCookie).toMatch(/HttpOnly/);
    expect(setCookie).toMatch(/SameSite=Strict/);
    expect(setCookie).toMatch(/Path=\//);
    expect(answer.text).not.toContain(CONSOLE_ADMIN_TOKEN);
    expect(answer.headers.get('cache-control')).toBe('no-store');

    expect((await c.call('GET', '/console/session', undefined, { cookie })).body).toMatchObject({ kind: 'admin', csrf_token: csrf });
    expect((await c.call('GET', '/api/v1/webhooks', undefined, { cookie })).status).toBe(200);
    const body = { url: 'http://127.0.0.1:9/hook', events: ['*'] };
    const noCsrf = await c.call('POST', '/api/v1/webhooks', body, { cookie });
    expect(noCsrf.status).toBe(403);
    expect(noCsrf.body.detail).toMatch(/X-CSRF-Token/);
    expect((await c.call('POST', '/api/v1/webhooks', body, { cookie, csrf: 'x'.repeat(43) })).status).toBe(403);
    expect((await c.call('GET', '/api/v1/webhooks', undefined, { cookie })).body.data).toHaveLength(0);
    expect((await c.call('POST', '/api/v1/webhooks', body, { cookie, csrf })).status).toBe(201);

    // A bearer header always wins: a wrong one is a 401 even with a good cookie.
    expect((await c.call('GET', '/api/v1/webhooks', undefined, { cookie, bearer: 'wrong' })).status).toBe(401);

    expect((await c.call('DELETE', '/console/session', undefined, { cookie })).status).toBe(403);
    const out = await c.call('DELETE', '/console/session', undefined, { cookie, csrf });
    expect(out.status).toBe(204);
    expect(out.headers.get('set-cookie')).toMatch(/Max-Age=0/);
    expect((await c.call('GET', '/api/v1/webhooks', undefined, { cookie })).status).toBe(401);
    expect((await c.call('GET', '/console/session', undefined, { cookie })).status).toBe(401);

    // Neither the admin token, nor the session, nor its CSRF token reaches a log line; the sign-in is logged.
    const logs = c.logs.join('\n');
    expect(logs).toContain('console session started');
    for (const secret of [CONSOLE_ADMIN_TOKEN, cookie.split('=')[1]!, csrf]) expect(logs).not.toContain(secret);
  });

  it('holds a portal session to its one endpoint, over every route', async () => {
    c = await startConsoleHost(dialect);
    const [a, b] = [await startSink(), await startSink()];
    sinks.push(a, b);
    const idA = (await c.call('POST', '/api/v1/webhooks', { url: `${a.url}/a`, events: ['metric.*'] })).body.id as string;
    const idB = (await c.call('POST', '/api/v1/webhooks', { url: `${b.url}/b`, events: ['metric.*'] })).body.id as string;
    await c.ingest('dev-portal-1', 2);
    await a.waitFor(2);
    await b.waitFor(2);
    const all = (await c.call('GET', '/api/v1/deliveries')).body.data as Array<{ id: number; webhook_id: string }>;
    const ofA = all.filter((d) => d.webhook_id === idA).map((d) => d.id);
    const ofB = all.filter((d) => d.webhook_id === idB).map((d) => d.id);
    expect(ofA).toHaveLength(2);
    expect(ofB).toHaveLength(2);

    expect((await c.call('POST', `/api/v1/webhooks/${idA}/portal-link`, { ttl_seconds: 5 })).status).toBe(422);
    expect((await c.call('POST', '/api/v1/webhooks/wh_NOPE/portal-link')).status).toBe(404);
    expect((await c.call('POST', `/api/v1/webhooks/${idA}/portal-link`, undefined, { bearer: null })).status).toBe(401);
    const link = await c.call('POST', `/api/v1/webhooks/${idA}/portal-link`, { ttl_seconds: 600 });
    expect(link.status).toBe(200);
    expect(link.body.url).toMatch(new RegExp(`^${c.url}/console/portal#token=v1\\.`));
    expect(Date.parse(link.body.expires_at) - Date.now()).toBeGreaterThan(500_000);

    const { cookie, csrf, answer } = await c.signIn({ portal_token: tokenOf(link.body.url) });
    expect(answer.body).toMatchObject({ kind: 'portal', endpoint_id: idA });
    const as = (method: string, p: string, body?: unknown) => c.call(method, `/api/v1${p}`, body, { cookie, csrf });

    // Its own endpoint and deliveries.
    expect((await as('GET', `/webhooks/${idA}`)).body.id).toBe(idA);
    const log = await as('GET', `/deliveries?webhook_id=${idB}&limit=100`);
    expect(log.status).toBe(200);
    expect(log.body.data.map((d: { id: number }) => d.id).sort()).toEqual([...ofA].sort());
    expect((await as('GET', `/deliveries?target=webhooks&webhook_id=${idB}&webhook_id=${idB}`)).body.data).toHaveLength(2);
    const one = await as('GET', `/deliveries/${ofA[0]}`);
    expect(one.status).toBe(200);
    expect(one.body.attempts_log[0].status_code).toBe(200);
    expect((await as('POST', `/deliveries/${ofA[0]}/retry`)).status).toBe(202);
    expect((await as('POST', `/webhooks/${idA}/test`)).status).toBe(202);
    const rotated = await as('POST', `/webhooks/${idA}/rotate-secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).toMatch(/^whsec_/);
    // The filter alone may change, and it is stored as sent; the catalogue its editor reads is open to it.
    const patched = await as('PATCH', `/webhooks/${idA}`, { filter: { 'data.cpu_usage': { gte: 90 } } });
    expect(patched.status).toBe(200);
    expect(patched.body.filter).toEqual({ 'data.cpu_usage': { gte: 90 } });
    const types = await as('GET', '/event-types');
    expect(types.status).toBe(200);
    expect(types.body.data.map((t: { name: string }) => t.name)).toContain('metric.submitted');
    // A filter the catalogue refuses is a 422 naming the field, for a portal session as for the operator.
    const bad = await as('PATCH', `/webhooks/${idA}`, { filter: { 'data.no_such_field': 1 } });
    expect(bad.status).toBe(422);
    expect(bad.body.errors.map((e: { path: string }) => e.path)).toEqual(['filter.data.no_such_field']);

    // Another endpoint, and its deliveries, do not exist for this session, whatever the spelling.
    for (const [method, p] of [
      ['GET', `/webhooks/${idB}`],
      ['GET', `/webhooks/${encodeURIComponent(idB).replace('wh_', '%77h_')}`],
      ['GET', `/WEBHOOKS/${idB}`],
      ['GET', `/webhooks/${idB}/`],
      ['POST', `/webhooks/${idB}/test`],
      ['POST', `/webhooks/${idB}/rotate-secret`],
      ['PATCH', `/webhooks/${idB}`],
      ['GET', `/deliveries/${ofB[0]}`],
      ['GET', `/deliveries/${ofB[0]}/`],
      ['POST', `/deliveries/${ofB[0]}/retry`],
      ['GET', '/deliveries/999999'],
    ] as const) {
      const r = await as(method, p, method === 'PATCH' ? { filter: {} } : undefined);
      expect(r.status, `${method} ${p}`).toBe(404);
      expect(r.text).not.toContain(b.url);
    }
    // Everything relay-wide or admin-only is refused.
    for (const [method, p, body] of [
      ['GET', '/webhooks'],
      ['POST', '/webhooks', { url: `${b.url}/x`, events: ['*'] }],
      ['PATCH', `/webhooks/${idA}`, { url: `${b.url}/stolen` }],
      ['PATCH', `/webhooks/${idA}`, { enabled: false, filter: {} }],
      ['DELETE', `/webhooks/${idA}`],
      ['GET', `/webhooks/${idA}/secret`],
      ['POST', `/webhooks/${idA}/portal-link`],
      // Replay, headers and rate limits stay the operator's: replay re-sends history the link never saw, headers
      // carry the operator's credentials to the receiver, and a rate limit is capacity planning.
      ['POST', `/webhooks/${idA}/replay`, { since: '2020-01-01T00:00:00Z' }],
      ['POST', `/webhooks/${idA}/replay`, { since: new Date(Date.now() - 60_000).toISOString(), types: ['metric.*'] }],
      ['PATCH', `/webhooks/${idA}`, { headers: { 'X-Api-Key': 'stolen-key' } }],
      ['PATCH', `/webhooks/${idA}`, { headers: null }],
      ['PATCH', `/webhooks/${idA}`, { rate_limit: 1 }],
      ['PATCH', `/webhooks/${idA}`, { filter: {}, rate_limit: null }],
      ['POST', '/deliveries/recover', { since: '2020-01-01T00:00:00Z' }],
      ['POST', '/reconcile'],
      ['GET', '/stats'],
    ] as const) {
      const r = await as(method, p, body);
      expect(r.status, `${method} ${p}`).toBe(403);
      expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
    }
    const after = (await c.call('GET', `/api/v1/webhooks/${idA}`)).body;
    expect(after).toMatchObject({
      url: `${a.url}/a`,
      enabled: true,
      headers: [],
      rate_limit: null,
      filter: { 'data.cpu_usage': { gte: 90 } },
    });
    // Nothing was replayed: A still has its own two deliveries plus the retry's and the test event's only.
    const ofAAfter = (await c.call('GET', `/api/v1/deliveries?webhook_id=${idA}&limit=100`)).body.data as Array<{ event_type: string }>;
    expect(ofAAfter.filter((d) => d.event_type === 'metric.submitted')).toHaveLength(2);
    expect((await c.call('GET', '/api/v1/webhooks')).body.data).toHaveLength(2);
    // A portal session's changes need its CSRF token too.
    expect((await c.call('POST', `/api/v1/webhooks/${idA}/test`, undefined, { cookie })).status).toBe(403);
    const logs = c.logs.join('\n');
    expect(logs).toContain(`portal link issued for webhook endpoint ${idA}`);
    for (const secret of [tokenOf(link.body.url), tokenOf(link.body.url).split('.')[2]!, cookie.split('=')[1]!, csrf, rotated.body.secret])
      expect(logs).not.toContain(secret);
  });

  it('refuses an expired, altered or foreign portal link with a clear answer', async () => {
    c = await startConsoleHost(dialect);
    const id = (await c.call('POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/h', events: ['*'] })).body.id as string;
    const link = (await c.call('POST', `/api/v1/webhooks/${id}/portal-link`)).body;
    expect(Date.parse(link.expires_at) - Date.now()).toBeGreaterThan(3500_000);
    const token = tokenOf(link.url);
    const refused = async (portal_token: string) => {
      const r = await c.call('POST', '/console/session', { portal_token }, { bearer: null });
      expect(r.status).toBe(401);
      expect(r.headers.get('set-cookie')).toBeNull();
      return r.body.detail as string;
    };
    expect(await refused(forgeToken(CONSOLE_ADMIN_TOKEN, { e: id, x: Math.floor(Date.now() / 1000) - 5 }))).toMatch(/expired at/);
    expect(await refused(token.slice(0, -3))).toMatch(/not valid/);
    expect(await refused(forgeToken('another-admin-token', { e: id, x: Math.floor(Date.now() / 1000) + 600 }))).toMatch(/not valid/);
    expect(await refused(forgeToken(CONSOLE_ADMIN_TOKEN, { e: 'wh_GONE', x: Math.floor(Date.now() / 1000) + 600 }))).toMatch(
      /no longer exists/,
    );
    expect((await c.signIn({ portal_token: token })).answer.body.endpoint_id).toBe(id);
  });

  it('serves the overview snapshot, the page with a strict CSP, and an index at /', async () => {
    c = await startConsoleHost(dialect);
    const sink = await startSink();
    sinks.push(sink);
    await c.call('POST', '/api/v1/webhooks', { url: sink.url, events: ['*'] });
    await c.ingest('dev-stats', 3);
    await sink.waitFor(3);
    const stats = await eventually(async () => {
      const r = await c.call('GET', '/api/v1/stats');
      // Counts are cached for a second: wait for the snapshot that has seen every delivery finish.
      return r.body.totals.succeeded >= 3 && r.body.queues[0].inflight === 0 ? r : null;
    });
    expect(stats.body.totals.enqueued).toBeGreaterThanOrEqual(3);
    expect(stats.body.queues).toContainEqual({ target: 'webhooks', pending: 0, inflight: 0, dead: 0 });
    expect(stats.body.circuits).toEqual([]);
    expect((await c.call('GET', '/api/v1/stats', undefined, { bearer: null })).status).toBe(401);

    const page = await fetch(`${c.url}/console/`);
    expect(page.status).toBe(200);
    const csp = page.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(await page.text()).toContain('/console/assets/app.js');
    const js = await fetch(`${c.url}/console/assets/app.js`);
    expect(js.headers.get('content-type')).toMatch(/javascript/);
    expect((await js.text()).length).toBeGreaterThan(1000);
    expect((await fetch(`${c.url}/console/assets/../../openapi.json`)).status).toBe(200);
    expect((await fetch(`${c.url}/console/assets/secret.txt`)).status).toBe(404);

    const html = await fetch(`${c.url}/`, { headers: { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' } });
    expect(html.headers.get('content-type')).toMatch(/text\/html/);
    expect(html.headers.get('content-security-policy')).not.toContain('unsafe-inline');
    const text = await html.text();
    for (const href of ['/console/', '/docs/api.md', '/openapi.json']) expect(text).toContain(`href="${href}"`);
    const json = await (await fetch(`${c.url}/`)).json();
    expect(json).toMatchObject({ service: 'devices', links: { console: '/console/', docs: '/docs/api.md', openapi: '/openapi.json' } });
    expect(await (await fetch(`${c.url}/docs/api.md`)).text()).toMatch(/^# /);
  });

  it('answers GET / on the mentor host too, without a console', async () => {
    c = await startConsoleHost(dialect);
    const m = await startMentorFixture(dialect);
    try {
      const json = (await (await fetch(`${m.url}/`)).json()) as { service: string; links: Record<string, string> };
      expect(json.service).toBe('mentor');
      expect(json.links).not.toHaveProperty('console');
      const html = await (await fetch(`${m.url}/`, { headers: { accept: 'text/html' } })).text();
      expect(html).toContain('href="/openapi.json"');
      expect(html).not.toContain('/console/');
    } finally {
      await m.close();
    }
  });
});
