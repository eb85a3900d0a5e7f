/**
 * Generated bad input for every management route of the devices host (fast-check, at least 1,000
 * requests per route, SQLite and PostgreSQL): webhooks, the delivery log, retry, recover, reconcile. Each
 * is answered 4xx as problem+json and changes nothing: no endpoint created, changed or deleted, no delivery
 * re-queued, nothing re-published. Wrong or missing tokens are among the defects.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../hosts/shared/config.js';
import { startDevicesHost } from '../hosts/devices/server.js';
import type { DevicesHost } from '../hosts/devices/server.js';
import { createPgDatabase, createSqliteUrl, DIALECTS } from './helpers/db.js';
import { eventually, startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';
import { badObject, FUZZ_RUNS, fuzzRoute, jsonRequest, structural } from './fuzz.fixture.js';
import type { FuzzRequest, FuzzTarget, Kind, Spec } from './fuzz.fixture.js';

const LIMIT = 16 * 1024;
const TOKEN = 'fuzz-admin-token-0123456789';
const TABLES = ['relay_webhooks', 'relay_events', 'relay_deliveries', 'relay_attempts', 'metrics'] as const;

const events: Kind = { t: 'strings', required: true, known: ['metric.submitted', 'device.registered', 'alert.submitted'] };
const webhookSpec = (required: boolean): Spec => ({
  url: { t: 'text', max: 2048, required, min1: true },
  events: { ...events, required },
  description: { t: 'text', max: 1000, free: true },
  enabled: { t: 'bool' },
});
/** URLs that are strings but never a deliverable public http(s) endpoint. */
const badUrl = fc.constantFrom(
  'ftp://hooks.fuzz.test/x',
  'not a url',
  'http://',
  '//hooks.fuzz.test/x',
  'javascript:alert(1)',
  'file:///etc/passwd',
  'http://127.0.0.1:9/x',
  'http://10.0.0.7/hook',
  'http://169.254.169.254/latest/meta-data',
  'http://[::1]/x',
  'http://localhost/x',
  'http://0.0.0.0/x',
  'https://unresolvable.invalid/x',
);

const isoKind: Kind = { t: 'iso' };
const nameKind: Kind = { t: 'text', max: 128, min1: true };
const recoverSpec: Spec = { since: { t: 'iso', required: true }, until: isoKind, target: nameKind, webhook_id: nameKind };
const reconcileSpec: Spec = { since: isoKind, types: { t: 'strings', known: [] } };

/** Path ids that name nothing: unknown, malformed, or not a number where one is needed. */
const unknownId = fc.oneof(
  fc.uuid().map((u) => `wh_${u}`),
  fc.constantFrom(
    '0',
    '-1',
    '1.5',
    '1e3',
    'abc',
    '%00',
    '%2e%2e',
    'a'.repeat(300),
    '99999999999999999999',
    '9007199254740993',
    ' 1',
    '%20',
  ),
  // (`.` and `..` are path segments fetch resolves away, and digits may name a real delivery.)
  fc
    .string({ minLength: 1, maxLength: 20 })
    .filter((s) => !/^\d+$/.test(s.trim()) && !/^\.+$/.test(s))
    .map((s) => encodeURIComponent(s)),
);
const unknownDeliveryId = fc.oneof(fc.integer({ min: 1_000_000, max: 2 ** 31 }).map(String), unknownId);

/** Missing, malformed or wrong credentials (these requests carry an otherwise valid body). */
const badAuth = fc.constantFrom(
  '',
  'Bearer',
  'Bearer ',
  `Bearer ${TOKEN}x`,
  `bearer${TOKEN}`,
  `Basic ${Buffer.from(`admin:${TOKEN}`).toString('base64')}`,
  TOKEN,
  `Bearer ${TOKEN.slice(1)}`,
);

function withBadAuth(r: FuzzRequest): fc.Arbitrary<FuzzRequest> {
  return badAuth.map((a) => ({ ...r, headers: { ...r.headers, authorization: a }, defect: `bad credentials ${JSON.stringify(a)}` }));
}

describe.each(DIALECTS)('bad input to every management route (%s)', (dialect) => {
  let host: DevicesHost;
  let sink: Sink;
  let drop: () => Promise<void>;
  let dataDir: string;
  let target: FuzzTarget;
  let hookId = '';
  let deliveryIds: number[] = [];

  beforeAll(async () => {
    // The mentor refuses everything (400): the deliveries below go dead, ready to be wrongly re-queued.
    sink = await startSink();
    sink.respond(() => ({ status: 400, body: '{"error":"refused"}' }));
    const database = dialect === 'postgres' ? await createPgDatabase('fuzz_mgmt') : createSqliteUrl();
    drop = database.drop;
    dataDir = mkdtempSync(path.join(tmpdir(), 'fuzz-mgmt-'));
    const config = loadConfig('devices', {
      DATABASE_URL: database.url,
      DATA_DIR: dataDir,
      PORT: '0',
      LOG_LEVEL: 'silent',
      MENTOR_API_URL: sink.url,
      RELAY_ADMIN_TOKEN: TOKEN,
      WEBHOOK_ALLOWED_HOSTS: 'hooks.fuzz.test',
      BODY_LIMIT: String(LIMIT),
    });
    host = await startDevicesHost(config, { host: '127.0.0.1' });
    const api = (method: string, p: string, body?: unknown) =>
      fetch(`${host.url}/api/v1${p}`, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    const created = await api('POST', '/webhooks', { url: 'https://hooks.fuzz.test/in', events: ['alert.submitted'], description: 'fuzz' });
    expect(created.status).toBe(201);
    hookId = ((await created.json()) as { id: string }).id;
    expect((await api('POST', '/devices/register', { deviceid: 'fuzz-mgmt' })).status).toBe(200);
    for (let i = 0; i < 3; i++) expect((await api('POST', '/devices/fuzz-mgmt/metrics', { cpu_usage: i })).status).toBe(200);
    await eventually(async () => {
      const r = (await (await api('GET', '/deliveries?status=dead')).json()) as { data: Array<{ id: number }> };
      deliveryIds = r.data.map((d) => d.id);
      return deliveryIds.length === 4;
    });
    target = {
      baseUrl: `${host.url}/api/v1`,
      healthUrl: `${host.url}/health`,
      db: host.db,
      tables: TABLES,
      unchanged:
        "SELECT (SELECT COUNT(*) FROM relay_deliveries WHERE status <> 'dead') AS live, (SELECT MAX(updated_at) FROM relay_deliveries) AS upd, " +
        '(SELECT MAX(updated_at) FROM relay_webhooks) AS hooks_upd',
      decorate: (r) => (r.headers.authorization === undefined ? { ...r, headers: { ...r.headers, authorization: `Bearer ${TOKEN}` } } : r),
    };
  }, 60_000);

  afterAll(async () => {
    await host?.close();
    await sink?.close();
    await drop?.();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const valid = { url: 'https://hooks.fuzz.test/new', events: ['metric.submitted'] };
  const routes: Array<[string, () => fc.Arbitrary<FuzzRequest>]> = [
    [
      'POST /webhooks',
      () =>
        fc.oneof(
          badObject(webhookSpec(true), valid).map(jsonRequest('POST', '/webhooks', 'invalid field')),
          badUrl.map((url) => jsonRequest('POST', '/webhooks', `refused url ${url}`)({ ...valid, url })),
          structural('POST', '/webhooks', valid, { limit: LIMIT, expectsArray: false }),
          withBadAuth(jsonRequest('POST', '/webhooks', 'auth')(valid)),
        ),
    ],
    ['GET /webhooks', () => withBadAuth({ method: 'GET', path: '/webhooks', headers: {}, defect: 'auth' })],
    [
      'PATCH /webhooks/{id}',
      () =>
        fc.oneof(
          badObject(webhookSpec(false), { description: 'changed' }).map((b) =>
            jsonRequest('PATCH', `/webhooks/${hookId}`, 'invalid field')(b),
          ),
          badUrl.map((url) => jsonRequest('PATCH', `/webhooks/${hookId}`, `refused url ${url}`)({ url })),
          fc
            .constant(null)
            .chain(() => structural('PATCH', `/webhooks/${hookId}`, { description: 'changed' }, { limit: LIMIT, expectsArray: false })),
          unknownId.map((id) => jsonRequest('PATCH', `/webhooks/${id}`, 'unknown id')({ description: 'changed' })),
          fc.constant(null).chain(() => withBadAuth(jsonRequest('PATCH', `/webhooks/${hookId}`, 'auth')({ enabled: false }))),
        ),
    ],
    [
      'GET /webhooks/{id}',
      () =>
        fc.oneof(
          unknownId.map((id) => ({ method: 'GET', path: `/webhooks/${id}`, headers: {}, defect: 'unknown id' })),
          fc.constant(null).chain(() => withBadAuth({ method: 'GET', path: `/webhooks/${hookId}`, headers: {}, defect: 'auth' })),
        ),
    ],
    [
      'DELETE /webhooks/{id}',
      () =>
        fc.oneof(
          unknownId.map((id) => ({ method: 'DELETE', path: `/webhooks/${id}`, headers: {}, defect: 'unknown id' })),
          fc.constant(null).chain(() => withBadAuth({ method: 'DELETE', path: `/webhooks/${hookId}`, headers: {}, defect: 'auth' })),
        ),
    ],
    [
      'GET /webhooks/{id}/secret',
      () =>
        fc.oneof(
          unknownId.map((id) => ({ method: 'GET', path: `/webhooks/${id}/secret`, headers: {}, defect: 'unknown id' })),
          fc.constant(null).chain(() => withBadAuth({ method: 'GET', path: `/webhooks/${hookId}/secret`, headers: {}, defect: 'auth' })),
        ),
    ],
    [
      'POST /webhooks/{id}/rotate-secret',
      () =>
        fc.oneof(
          unknownId.map((id) => ({ method: 'POST', path: `/webhooks/${id}/rotate-secret`, headers: {}, defect: 'unknown id' })),
          fc
            .constant(null)
            .chain(() => withBadAuth({ method: 'POST', path: `/webhooks/${hookId}/rotate-secret`, headers: {}, defect: 'auth' })),
        ),
    ],
    [
      'POST /webhooks/{id}/test',
      () =>
        fc.oneof(
          unknownId.map((id) => ({ method: 'POST', path: `/webhooks/${id}/test`, headers: {}, defect: 'unknown id' })),
          fc.constant(null).chain(() => withBadAuth({ method: 'POST', path: `/webhooks/${hookId}/test`, headers: {}, defect: 'auth' })),
        ),
    ],
    [
      'GET /deliveries',
      () =>
        fc.oneof(
          fc
            .record({
              key: fc.constantFrom('status', 'limit', 'since', 'until', 'cursor', 'target', 'event_type', 'deviceid', 'webhook_id'),
              value: fc.oneof(
                fc.constantFrom(
                  '',
                  'bogus',
                  '0',
                  '1001',
                  '-5',
                  '1.5',
                  'abc',
                  'x'.repeat(200),
                  '2025-13-01',
                  'yesterday',
                  '%00',
                  '\u0000',
                  'a\u0000b',
                  '\u001b[31m',
                  'x\ny',
                  '\t',
                  '\u007f',
                  '\u0085',
                  '2025-01-01T00:00:00Z\u0000',
                ),
                fc.string({ minLength: 1, maxLength: 10 }),
              ),
            })
            .filter(({ key, value }) => {
              // Keep only values the query schema refuses.
              // eslint-disable-next-line no-control-regex -- control characters and lone surrogates are refused
              const unsafe = /[\u0000-\u001f\u007f-\u009f]|[\ud800-\udfff]/.test(value);
              if (['target', 'event_type', 'deviceid', 'webhook_id'].includes(key))
                return value.length === 0 || value.length > 128 || unsafe;
              if (key === 'status') return !['pending', 'inflight', 'succeeded', 'dead'].includes(value);
              if (key === 'limit') return !(/^\d{1,4}$/.test(value) && Number(value) >= 1 && Number(value) <= 1000);
              if (key === 'since' || key === 'until') return !/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(Date.parse(value));
              return true;
            })
            .map(({ key, value }) => ({
              method: 'GET',
              path: `/deliveries?${key}=${encodeURIComponent(value)}`,
              headers: {},
              defect: `bad query ${key}`,
            })),
          fc.constant({
            method: 'GET',
            path: '/deliveries?since=2025-02-01T00:00:00Z&until=2025-01-01T00:00:00Z',
            headers: {},
            defect: 'window ends before it starts',
          }),
          withBadAuth({ method: 'GET', path: '/deliveries', headers: {}, defect: 'auth' }),
        ),
    ],
    [
      'GET /deliveries/{id}',
      () =>
        fc.oneof(
          unknownDeliveryId.map((id) => ({ method: 'GET', path: `/deliveries/${id}`, headers: {}, defect: 'unknown id' })),
          fc.constant(null).chain(() => withBadAuth({ method: 'GET', path: `/deliveries/${deliveryIds[0]}`, headers: {}, defect: 'auth' })),
        ),
    ],
    [
      'POST /deliveries/{id}/retry',
      () =>
        fc.oneof(
          unknownDeliveryId.map((id) => ({ method: 'POST', path: `/deliveries/${id}/retry`, headers: {}, defect: 'unknown id' })),
          fc
            .constant(null)
            .chain(() => withBadAuth({ method: 'POST', path: `/deliveries/${deliveryIds[0]}/retry`, headers: {}, defect: 'auth' })),
        ),
    ],
    [
      'POST /deliveries/recover',
      () =>
        fc.oneof(
          badObject(recoverSpec, { since: '2000-01-01T00:00:00Z' }).map(jsonRequest('POST', '/deliveries/recover', 'invalid field')),
          fc.constant(
            jsonRequest(
              'POST',
              '/deliveries/recover',
              'window ends before it starts',
            )({ since: '2030-01-01T00:00:00Z', until: '2000-01-01T00:00:00Z' }),
          ),
          structural('POST', '/deliveries/recover', { since: '2000-01-01T00:00:00Z' }, { limit: LIMIT, expectsArray: false }),
          withBadAuth(jsonRequest('POST', '/deliveries/recover', 'auth')({ since: '2000-01-01T00:00:00Z' })),
        ),
    ],
    [
      'POST /reconcile',
      () =>
        fc.oneof(
          badObject(reconcileSpec, { since: '2000-01-01T00:00:00Z' }).map(jsonRequest('POST', '/reconcile', 'invalid field')),
          structural('POST', '/reconcile', { since: '2000-01-01T00:00:00Z' }, { limit: LIMIT, expectsArray: false, emptyBodyOk: true }),
          withBadAuth(jsonRequest('POST', '/reconcile', 'auth')({})),
        ),
    ],
  ];

  it.each(routes)('%s: every generated bad request is refused and changes nothing', { timeout: 600_000 }, async (name, requests) => {
    const sent = await fuzzRoute(target, name, requests());
    expect(sent).toBeGreaterThanOrEqual(FUZZ_RUNS);
  });
});
