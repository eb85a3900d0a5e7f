/**
 * Issue 17, items 3, 4 and 8 over real HTTP: a delivery-log filter with a typo is a 422 naming what it may
 * be (not an empty page that looks like a toggle that is off); an empty bearer token says it is missing and
 * which variable sets it; a PostgreSQL outage answers devices 503 with Retry-After, not 500.
 */
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { isDatabaseUnavailable } from '../lib/db.js';
import { ConnectionAcquireTimeoutError, ConnectionRefusedError, DatabaseError, TimeoutError } from 'sequelize';
import { expectProblem, startDevices } from './devices.fixture.js';
import type { DevicesFixture } from './devices.fixture.js';
import { DIALECTS, PG_ADMIN_URL } from './helpers/db.js';
import { eventually } from './helpers/sink.js';

const ADMIN = 'operator-admin-token-0123456789';
const auth = { authorization: `Bearer ${ADMIN}` };

let f: DevicesFixture | undefined;
afterEach(async () => {
  await f?.cleanup();
  f = undefined;
});

describe.each(DIALECTS)('delivery-log filters (%s)', (dialect) => {
  it('answer 422 naming the allowed values for an unknown target, status or event type, and filter by a pattern', async () => {
    f = await startDevices(dialect, { mentor: true, env: { RELAY_ADMIN_TOKEN: ADMIN } });
    expect((await f.call('POST', '/devices/register', { deviceid: 'dev-f' })).status).toBeLessThan(300);
    expect((await f.call('POST', '/devices/dev-f/metrics', { cpu_usage: 1 })).status).toBeLessThan(300);
    await eventually(
      async () => (await f!.call('GET', '/deliveries?status=succeeded', undefined, { headers: auth })).json.data.length === 2,
    );

    const target = await f.call('GET', '/deliveries?target=mentr', undefined, { headers: auth });
    expectProblem(target, 422, ['target']);
    expect(target.json.errors[0].message).toBe('must be one of mentor, webhooks (got "mentr")');

    const status = await f.call('GET', '/deliveries?status=dead-ish', undefined, { headers: auth });
    expectProblem(status, 422, ['status']);
    expect(status.json.errors[0].message).toBe('must be one of pending, inflight, succeeded, dead');

    for (const typo of ['alerts', 'metrics.*', 'metric.submited']) {
      const r = await f.call('GET', `/deliveries?event_type=${encodeURIComponent(typo)}`, undefined, { headers: auth });
      expectProblem(r, 422, ['event_type']);
      expect(r.json.errors[0].message).toContain('must be one of device.registered, metric.submitted');
      expect(r.json.errors[0].message).toContain(`(got ${JSON.stringify(typo)})`);
    }

    const alerts = await f.call('GET', '/deliveries?event_type=alerts', undefined, { headers: auth });
    expect(alerts.json.errors[0].message).toBe(
      'must be one of device.registered, metric.submitted, activity.submitted, process.snapshot, alert.submitted, screenshot.submitted, command.updated, command.created, webhook.test, endpoint.disabled, endpoint.failing, endpoint.recovered, delivery.dead (got "alerts"), or a pattern such as metric.* or *',
    );
    // The webhooks plugin's operational events travel through the outbox too.
    for (const known of ['delivery.dead', 'endpoint.*'])
      expect((await f.call('GET', `/deliveries?event_type=${known}`, undefined, { headers: auth })).status, known).toBe(200);

    const both = await f.call('GET', '/deliveries?target=nope&event_type=nope', undefined, { headers: auth });
    expectProblem(both, 422, ['target', 'event_type']);

    // Known values still filter; a pattern matches the types it names.
    const metrics = await f.call('GET', '/deliveries?event_type=metric.*', undefined, { headers: auth });
    expect(metrics.status).toBe(200);
    expect(metrics.json.data.map((d: { event_type: string }) => d.event_type)).toEqual(['metric.submitted']);
    const exact = await f.call('GET', '/deliveries?target=mentor&event_type=device.registered', undefined, { headers: auth });
    expect(exact.json.data).toHaveLength(1);
    expect((await f.call('GET', '/deliveries?event_type=*', undefined, { headers: auth })).json.data).toHaveLength(2);
    expect((await f.call('GET', '/deliveries?target=webhooks', undefined, { headers: auth })).json.data).toEqual([]);
  });

  it('an empty bearer token (an unset $TOKEN) is "missing", naming RELAY_ADMIN_TOKEN', async () => {
    f = await startDevices(dialect, { env: { RELAY_ADMIN_TOKEN: ADMIN } });
    for (const header of ['Bearer ', 'Bearer']) {
      const r = await f.call('GET', '/deliveries', undefined, { headers: { authorization: header } });
      expectProblem(r, 401);
      expect(r.json.detail).toMatch(/^The bearer token is missing/);
      expect(r.json.detail).toContain('RELAY_ADMIN_TOKEN');
      expect(r.headers.get('www-authenticate')).toBe('Bearer realm="raqeem-relay", error="invalid_request"');
    }
    // Another scheme is still told to use Bearer.
    const basic = await f.call('GET', '/deliveries', undefined, { headers: { authorization: 'Basic abc' } });
    expect(basic.json.detail).toBe('The Authorization header must use the Bearer scheme');
  });
});

describe('a database outage', () => {
  it('answers device routes 503 problem+json with Retry-After while PostgreSQL refuses connections, and recovers', async () => {
    f = await startDevices('postgres');
    expect((await f.call('POST', '/devices/register', { deviceid: 'dev-o' })).status).toBeLessThan(300);
    const name = new URL(f.host.db.postgresUrl!).pathname.slice(1);
    const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
    await admin.connect();
    try {
      // The shared server stays up: only this test's database stops taking connections, and its sessions end.
      await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name]);

      for (const [method, p, body] of [
        ['POST', '/devices/dev-o/metrics', { cpu_usage: 5 }],
        ['POST', '/devices/register', { deviceid: 'dev-o2' }],
        ['GET', '/devices/dev-o', undefined],
      ] as const) {
        const r = await f.call(method, p, body);
        expectProblem(r, 503);
        expect(r.headers.get('retry-after'), `${method} ${p}`).toBe('5');
        expect(r.json.detail).toBe('The database is unavailable; retry in 5 s');
      }
      const ready = await f.call('GET', '/health/ready', undefined, { root: true });
      expect(ready.status).toBe(503);
    } finally {
      await admin.query(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      await admin.end();
    }
    await eventually(async () => (await f!.call('POST', '/devices/dev-o/metrics', { cpu_usage: 6 })).status < 300);
    expect(await f.count('metrics')).toBe(1);
  });

  it('recognises connection, pool and busy errors, and not a wrong statement', () => {
    // What the drivers throw, as sequelize wraps it.
    const driver = (message: string, code: string) => Object.assign(new Error(message), { code, sql: 'SELECT 1', parameters: {} });
    expect(isDatabaseUnavailable(new ConnectionRefusedError(driver('connect ECONNREFUSED', 'ECONNREFUSED')))).toBe(true);
    expect(isDatabaseUnavailable(new ConnectionAcquireTimeoutError(new Error('pool')))).toBe(true);
    expect(isDatabaseUnavailable(new TimeoutError(driver('SQLITE_BUSY: database is locked', 'SQLITE_BUSY')))).toBe(true);
    expect(isDatabaseUnavailable(new DatabaseError(driver('terminating connection due to administrator command', '57P01')))).toBe(true);
    expect(isDatabaseUnavailable(new DatabaseError(driver('syntax error at or near "SELEC"', '42601')))).toBe(false);
    expect(isDatabaseUnavailable(new Error('boom'))).toBe(false);
  });
});
