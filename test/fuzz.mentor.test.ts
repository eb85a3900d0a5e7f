/**
 * Generated bad input for every mentor ingest route and command creation (fast-check, at least 1,000
 * requests per route, SQLite and PostgreSQL). Bodies are signed with the shared secret so they reach
 * validation; unsigned, wrongly signed and stale requests are among the defects. Each must be answered 4xx
 * as problem+json and store nothing (records, the device list, process snapshots, commands, the outbox).
 */
import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSecret, signHeaders } from '../lib/signing.js';
import { DIALECTS } from './helpers/db.js';
import { fixtures, startMentorFixture } from './helpers/mentor.js';
import type { MentorFixture } from './helpers/mentor.js';
import { badArray, badObject, FUZZ_RUNS, fuzzRoute, jsonRequest, structural } from './fuzz.fixture.js';
import type { FuzzRequest, FuzzTarget, Kind, Spec } from './fuzz.fixture.js';

const TABLES = [
  'devices',
  'metrics',
  'activities',
  'alerts',
  'screenshots',
  'processes',
  'process_snapshots',
  'commands',
  'relay_events',
  'relay_deliveries',
] as const;
const DEVICE = 'fuzz-mentor-device';
const LIMIT = 1024 * 1024;

const id: Kind = { t: 'id', required: true };
const recordId: Kind = { t: 'text', max: 128, required: true, min1: true };
const iso: Kind = { t: 'iso' };
const s = (max: number): Kind => ({ t: 'text', max });
const free = (max: number): Kind => ({ t: 'text', max, free: true });
const count: Kind = { t: 'int', min: 0, max: Number.MAX_SAFE_INTEGER };

const registrationSpec: Spec = {
  deviceid: id,
  device_name: s(255),
  device_type: s(255),
  os: s(255),
  device_location: s(255),
  ip_address: s(255),
  mac_address: s(255),
  current_user: s(255),
  last_seen: iso,
  is_online: { t: 'bool' },
};
const metricSpec: Spec = {
  metricid: recordId,
  deviceid: id,
  timestamp: iso,
  cpu_usage: { t: 'num', min: 0, max: 100 },
  cpu_temp: { t: 'num', min: -50, max: 150 },
  memory_total: count,
  memory_used: count,
  swap_used: count,
  disk_total: count,
  disk_used: count,
  net_bytes_in: count,
  net_bytes_out: count,
};
const activitySpec: Spec = {
  activityid: recordId,
  deviceid: id,
  timestamp: iso,
  activity_type: s(255),
  description: free(1000),
  app: s(255),
  duration: { t: 'num', min: 0, max: 86_400 },
};
const alertSpec: Spec = {
  alertid: recordId,
  deviceid: id,
  timestamp: iso,
  level: { t: 'enum', values: ['info', 'warning', 'critical'] },
  alert_type: s(255),
  message: free(500),
  value: { t: 'num', min: -Number.MAX_VALUE, max: Number.MAX_VALUE },
  threshold: { t: 'num', min: -Number.MAX_VALUE, max: Number.MAX_VALUE },
};
const deviceAlertSpec: Spec = { ...alertSpec, deviceid: { t: 'id' } };
const screenshotSpec: Spec = {
  screenshotid: recordId,
  deviceid: id,
  timestamp: iso,
  path: s(1024),
  resolution: s(64),
  size: count,
  content_type: s(128),
};
const processSpec: Spec = {
  pid: { t: 'int', min: 0, max: 2 ** 31 - 1, required: true },
  process_name: { t: 'text', max: 255, required: true, min1: true },
  cpu: { t: 'num', min: 0, max: 100 },
  memory: count,
  command_text: free(4096),
  deviceid: id,
  snapshot_at: { t: 'iso', required: true },
};
const statusSpec: Spec = {
  commandid: recordId,
  deviceid: { t: 'id' },
  status: { t: 'enum', values: ['pending', 'running', 'completed', 'failed'], required: true },
  result: free(10_000),
  exit_code: { t: 'int', min: 0, max: 255 },
  updated_at: iso,
};

const now = '2025-01-01T00:00:00.000Z';
const valid = {
  registration: fixtures.registration(DEVICE),
  metric: { metricid: 'm-1', deviceid: DEVICE, timestamp: now, cpu_usage: 10, memory_total: 1 },
  activity: { activityid: 'a-1', deviceid: DEVICE, timestamp: now, activity_type: 'app_focus', duration: 3 },
  alert: { alertid: 'al-1', deviceid: DEVICE, timestamp: now, level: 'info', alert_type: 'cpu', value: 1, threshold: 2 },
  screenshot: { screenshotid: 's-1', deviceid: DEVICE, timestamp: now, path: '/x.png', size: 10 },
  process: { pid: 1, process_name: 'init', cpu: 0.5, memory: 10, deviceid: DEVICE, snapshot_at: now },
  status: { commandid: 'c-unknown-but-valid', deviceid: DEVICE, status: 'completed', result: 'ok', exit_code: 0 },
};

/** A valid body whose signature is missing, made with another secret, stale, or over other bytes. */
function badSignature(p: string, body: unknown, secret: string): fc.Arbitrary<FuzzRequest> {
  const raw = JSON.stringify(body);
  const base = { method: 'POST', path: p, body: raw };
  return fc.constantFrom<FuzzRequest>(
    { ...base, headers: { 'content-type': 'application/json', 'x-unsigned': '1' }, defect: 'unsigned' },
    {
      ...base,
      headers: { 'content-type': 'application/json', ...signHeaders({ id: 'msg_x', body: raw, secret: generateSecret() }) },
      defect: 'signed with another secret',
    },
    {
      ...base,
      headers: {
        'content-type': 'application/json',
        ...signHeaders({ id: 'msg_x', body: raw, secret, timestamp: Math.floor(Date.now() / 1000) - 3600 }),
      },
      defect: 'stale signature',
    },
    {
      ...base,
      headers: { 'content-type': 'application/json', ...signHeaders({ id: 'msg_x', body: `${raw} `, secret }) },
      defect: 'signature over other bytes',
    },
  );
}

function records(p: string, spec: Spec, item: Record<string, unknown>, secret: string): fc.Arbitrary<FuzzRequest> {
  return fc.oneof(
    badObject(spec, item).map(jsonRequest('POST', p, 'invalid field')),
    badArray(spec, item).map(jsonRequest('POST', p, 'one bad record among good ones')),
    structural('POST', p, item, { limit: LIMIT, expectsArray: false, arrayOk: true }),
    badSignature(p, item, secret),
  );
}

describe.each(DIALECTS)('bad input to every mentor ingest route (%s)', (dialect) => {
  let mentor: MentorFixture;
  let target: FuzzTarget;
  const secret = generateSecret();

  beforeAll(async () => {
    mentor = await startMentorFixture(dialect, { MENTOR_SIGNING_SECRET: secret, BODY_LIMIT: String(LIMIT) });
    expect((await mentor.post('/devices/register', valid.registration)).status).toBe(200);
    expect((await mentor.post('/devices/processes', [valid.process, { ...valid.process, pid: 2 }])).status).toBe(200);
    expect((await mentor.post(`/devices/${DEVICE}/commands`, { command_text: 'status' }, { sign: false })).status).toBeLessThan(300);
    target = {
      baseUrl: mentor.url,
      healthUrl: `${mentor.url}/health`,
      db: mentor.host.db,
      tables: TABLES,
      unchanged:
        'SELECT d.deviceid, d.device_name, d.last_seen, c.status, c.updated_at, (SELECT MAX(snapshot_at) FROM process_snapshots) AS snap FROM devices d, commands c',
      // Sign what the generator made, unless the defect is the signature itself.
      decorate: (r) =>
        r.body === undefined || r.headers['webhook-signature'] || r.headers['x-unsigned'] || r.path.endsWith('/commands')
          ? r
          : { ...r, headers: { ...r.headers, ...signHeaders({ id: `msg_${randomUUID()}`, body: r.body, secret }) } },
    };
  }, 60_000);

  afterAll(async () => {
    await mentor?.close();
  });

  const routes: Array<[string, () => fc.Arbitrary<FuzzRequest>]> = [
    [
      'POST /devices/register',
      () =>
        fc.oneof(
          badObject(registrationSpec, valid.registration).map(jsonRequest('POST', '/devices/register', 'invalid field')),
          structural('POST', '/devices/register', valid.registration, { limit: LIMIT, expectsArray: false }),
          badSignature('/devices/register', valid.registration, secret),
        ),
    ],
    ['POST /devices/metrics', () => records('/devices/metrics', metricSpec, valid.metric, secret)],
    ['POST /devices/activity', () => records('/devices/activity', activitySpec, valid.activity, secret)],
    ['POST /devices/alerts', () => records('/devices/alerts', alertSpec, valid.alert, secret)],
    ['POST /devices/{id}/alerts', () => records(`/devices/${DEVICE}/alerts`, deviceAlertSpec, valid.alert, secret)],
    ['POST /devices/screenshots', () => records('/devices/screenshots', screenshotSpec, valid.screenshot, secret)],
    [
      'POST /devices/processes',
      () =>
        fc.oneof(
          badArray(processSpec, valid.process).map(jsonRequest('POST', '/devices/processes', 'one bad process among good ones')),
          badObject({ deviceid: id, snapshot_at: { t: 'iso', required: true } }, { deviceid: DEVICE, snapshot_at: now, processes: [] }).map(
            jsonRequest('POST', '/devices/processes', 'bad envelope'),
          ),
          fc.constant(jsonRequest('POST', '/devices/processes', 'empty array (not a snapshot)')([])),
          fc.constant(
            jsonRequest(
              'POST',
              '/devices/processes',
              'mixed devices in one snapshot',
            )([valid.process, { ...valid.process, deviceid: 'other-device' }]),
          ),
          structural('POST', '/devices/processes', [valid.process], { limit: LIMIT, expectsArray: false, arrayOk: true }),
          badSignature('/devices/processes', [valid.process], secret),
        ),
    ],
    [
      'POST /commands/status',
      () =>
        fc.oneof(
          badObject(statusSpec, valid.status).map(jsonRequest('POST', '/commands/status', 'invalid field')),
          structural('POST', '/commands/status', valid.status, { limit: LIMIT, expectsArray: false }),
          badSignature('/commands/status', valid.status, secret),
        ),
    ],
    [
      'POST /devices/{id}/commands',
      () =>
        fc.oneof(
          fc
            .oneof(
              fc
                .string({ maxLength: 30 })
                .filter((t) => !/^\s*(get_info|status|restart|get_processes|get_logs|restart_service|screenshot)(\s|$)/.test(t)),
              fc.constantFrom('rm -rf /', 'STATUS', ' ', '', 'x'.repeat(1001)),
              fc.integer(),
              fc.constant(null),
            )
            .map((t) => jsonRequest('POST', `/devices/${DEVICE}/commands`, 'command not allowed')({ command_text: t })),
          fc
            .constantFrom('.bad', 'a%20b', 'a'.repeat(129))
            .map((d) => jsonRequest('POST', `/devices/${d}/commands`, 'bad device id')({ command_text: 'status' })),
          structural('POST', `/devices/${DEVICE}/commands`, { command_text: 'status' }, { limit: LIMIT, expectsArray: false }),
        ),
    ],
  ];

  it.each(routes)('%s: every generated bad request is refused whole', { timeout: 600_000 }, async (name, requests) => {
    const sent = await fuzzRoute(target, name, requests());
    expect(sent).toBeGreaterThanOrEqual(FUZZ_RUNS);
  });
});
