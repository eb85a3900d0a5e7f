/**
 * Bad input for every ingest route (SPEC section 9): exact status, an RFC 9457 body naming the offending
 * fields, and nothing stored or enqueued. One host per dialect serves the whole table; after every case the
 * row counts of every table (records, outbox events and deliveries) must be exactly what they were.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS } from './helpers/db.js';
import { expectProblem, imageForm, PNG, snapshotCounts, startDevices } from './devices.fixture.js';
import type { DevicesFixture } from './devices.fixture.js';

interface Case {
  name: string;
  method?: string;
  path: string;
  /** An object is sent as JSON; a string or FormData as is. */
  body?: unknown;
  headers?: Record<string, string>;
  status: number;
  fields?: string[];
}

const JSON_CT = { 'content-type': 'application/json' };
const big = (bytes: number) => JSON.stringify({ cpu_usage: 1, padding: 'x'.repeat(bytes) });
const bigArray = (bytes: number, item: object) => JSON.stringify([item, { ...item, padding: 'x'.repeat(bytes) }]);

/** Cases every JSON ingest route shares. */
function common(path: string, valid: unknown, opts: { pathId?: boolean } = {}): Case[] {
  const list: Case[] = [
    { name: 'malformed JSON', path, body: '{"cpu_usage": 1,', headers: JSON_CT, status: 400 },
    { name: 'truncated JSON array', path, body: '[{"a": 1}', headers: JSON_CT, status: 400 },
    { name: 'wrong content type', path, body: JSON.stringify(valid), headers: { 'content-type': 'text/plain' }, status: 415 },
    { name: 'form-encoded body', path, body: 'cpu_usage=1', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415 },
    {
      name: 'body over BODY_LIMIT',
      path,
      body: Array.isArray(valid) ? bigArray(20_000, valid[0]) : big(20_000),
      headers: JSON_CT,
      status: 413,
    },
  ];
  if (opts.pathId !== false) {
    list.push(
      { name: 'unknown device', path: path.replace('dev-1', 'ghost-device'), body: valid, status: 404 },
      { name: 'path id with illegal characters', path: path.replace('dev-1', 'bad%20id%21'), body: valid, status: 422, fields: ['id'] },
      { name: 'path id starting with a dot', path: path.replace('dev-1', '.hidden'), body: valid, status: 422, fields: ['id'] },
      { name: 'path id longer than 128', path: path.replace('dev-1', 'a'.repeat(129)), body: valid, status: 422, fields: ['id'] },
    );
  }
  return list;
}

const CASES: Case[] = [
  // register
  ...common('/devices/register', { deviceid: 'dev-2' }, { pathId: false }),
  { name: 'register: missing deviceid', path: '/devices/register', body: { device_name: 'x' }, status: 422, fields: ['deviceid'] },
  { name: 'register: deviceid with a space', path: '/devices/register', body: { deviceid: 'a b' }, status: 422, fields: ['deviceid'] },
  { name: 'register: deviceid a number', path: '/devices/register', body: { deviceid: 42 }, status: 422, fields: ['deviceid'] },
  {
    name: 'register: wrong types',
    path: '/devices/register',
    body: { deviceid: 'dev-2', device_name: 5, os: ['linux'] },
    status: 422,
    fields: ['device_name', 'os'],
  },
  {
    name: 'register: string too long',
    path: '/devices/register',
    body: { deviceid: 'dev-2', device_location: 'x'.repeat(256) },
    status: 422,
    fields: ['device_location'],
  },
  {
    name: 'register: NUL in a string',
    path: '/devices/register',
    body: { deviceid: 'dev-2', device_name: 'a\u0000b' },
    status: 422,
    fields: ['device_name'],
  },
  { name: 'register: an array body', path: '/devices/register', body: [{ deviceid: 'dev-2' }], status: 422 },
  { name: 'register: a JSON string body', path: '/devices/register', body: '"dev-2"', headers: JSON_CT, status: 400 },

  // metrics
  ...common('/devices/dev-1/metrics', { cpu_usage: 1 }),
  { name: 'metrics: cpu_usage over 100', path: '/devices/dev-1/metrics', body: { cpu_usage: 100.5 }, status: 422, fields: ['cpu_usage'] },
  { name: 'metrics: cpu_temp below -50', path: '/devices/dev-1/metrics', body: { cpu_temp: -51 }, status: 422, fields: ['cpu_temp'] },
  {
    name: 'metrics: negative and fractional counters',
    path: '/devices/dev-1/metrics',
    body: { memory_total: -1, disk_used: 1.5, net_bytes_out: 2 ** 60 },
    status: 422,
    fields: ['memory_total', 'disk_used', 'net_bytes_out'],
  },
  {
    name: 'metrics: wrong types',
    path: '/devices/dev-1/metrics',
    body: { cpu_usage: '50', swap_used: true },
    status: 422,
    fields: ['cpu_usage', 'swap_used'],
  },
  // An array is a batch of samples (INGEST_MAX_ITEMS, 3 here): one bad element refuses the whole request.
  {
    name: 'metrics: one bad element of an array',
    path: '/devices/dev-1/metrics',
    body: [{ cpu_usage: 1 }, { cpu_usage: 2 }, { cpu_usage: 101 }],
    status: 422,
    fields: ['[2].cpu_usage'],
  },
  { name: 'metrics: a non-object element', path: '/devices/dev-1/metrics', body: [{ cpu_usage: 1 }, 'x'], status: 422, fields: ['[1]'] },
  {
    name: 'metrics: more than INGEST_MAX_ITEMS elements',
    path: '/devices/dev-1/metrics',
    body: [{}, {}, {}, {}],
    status: 422,
    fields: ['(body)'],
  },
  {
    name: 'activities: more than INGEST_MAX_ITEMS elements',
    path: '/devices/dev-1/activities',
    body: Array(4).fill({ activity_type: 'x' }),
    status: 422,
    fields: ['(body)'],
  },
  {
    name: 'alerts: more than INGEST_MAX_ITEMS elements',
    path: '/devices/dev-1/alerts',
    body: Array(4).fill({ level: 'info', alert_type: 'x' }),
    status: 422,
    fields: ['(body)'],
  },

  // processes
  ...common('/devices/dev-1/processes', [{ pid: 1, process_name: 'init' }]),
  { name: 'processes: an object body', path: '/devices/dev-1/processes', body: { pid: 1, process_name: 'init' }, status: 422 },
  {
    name: 'processes: missing pid and name',
    path: '/devices/dev-1/processes',
    body: [{ cpu: 1 }],
    status: 422,
    fields: ['[0].pid', '[0].process_name'],
  },
  {
    name: 'processes: out of range',
    path: '/devices/dev-1/processes',
    body: [{ pid: -1, process_name: 'x', cpu: 101, memory: -5 }],
    status: 422,
    fields: ['[0].pid', '[0].cpu', '[0].memory'],
  },
  {
    name: 'processes: strings too long',
    path: '/devices/dev-1/processes',
    body: [{ pid: 1, process_name: 'p'.repeat(256), command_text: 'c'.repeat(4097) }],
    status: 422,
    fields: ['[0].process_name', '[0].command_text'],
  },
  {
    name: 'processes: one bad item among good ones',
    path: '/devices/dev-1/processes',
    body: [
      { pid: 1, process_name: 'a' },
      { pid: 2, process_name: 'b' },
      { pid: 'x', process_name: 'c' },
    ],
    status: 422,
    fields: ['[2].pid'],
  },

  // activities
  ...common('/devices/dev-1/activities', [{ activity_type: 'idle' }]),
  {
    name: 'activities: missing activity_type',
    path: '/devices/dev-1/activities',
    body: [{ app: 'x' }],
    status: 422,
    fields: ['[0].activity_type'],
  },
  {
    name: 'activities: duration out of range',
    path: '/devices/dev-1/activities',
    body: [
      { activity_type: 'a', duration: 86_401 },
      { activity_type: 'b', duration: -1 },
    ],
    status: 422,
    fields: ['[0].duration', '[1].duration'],
  },
  {
    name: 'activities: too long',
    path: '/devices/dev-1/activities',
    body: [{ activity_type: 'a', description: 'd'.repeat(1001), app: 'a'.repeat(256) }],
    status: 422,
    fields: ['[0].description', '[0].app'],
  },
  {
    name: 'activities: one bad item among good ones',
    path: '/devices/dev-1/activities',
    body: [{ activity_type: 'a' }, { activity_type: 'b' }, { activity_type: 3 }],
    status: 422,
    fields: ['[2].activity_type'],
  },
  { name: 'activities: null item', path: '/devices/dev-1/activities', body: [null], status: 422, fields: ['[0]'] },

  // alerts
  ...common('/devices/dev-1/alerts', [{ level: 'info', alert_type: 'cpu' }]),
  {
    name: 'alerts: bad level',
    path: '/devices/dev-1/alerts',
    body: [{ level: 'panic', alert_type: 'cpu' }],
    status: 422,
    fields: ['[0].level'],
  },
  {
    name: 'alerts: missing required',
    path: '/devices/dev-1/alerts',
    body: [{ message: 'hot' }],
    status: 422,
    fields: ['[0].level', '[0].alert_type'],
  },
  {
    name: 'alerts: wrong types and too long',
    path: '/devices/dev-1/alerts',
    body: [{ level: 'info', alert_type: 'cpu', message: 'm'.repeat(501), value: 'high', threshold: {} }],
    status: 422,
    fields: ['[0].message', '[0].value', '[0].threshold'],
  },

  // screenshots (JSON metadata and multipart)
  ...common('/devices/dev-1/screenshots', { path: '/a.png' }).filter((c) => c.status !== 415),
  {
    name: 'screenshots: text/plain',
    path: '/devices/dev-1/screenshots',
    body: 'hello',
    headers: { 'content-type': 'text/plain' },
    status: 415,
  },
  { name: 'screenshots: JSON missing path', path: '/devices/dev-1/screenshots', body: { size: 1 }, status: 422, fields: ['path'] },
  {
    name: 'screenshots: JSON negative size',
    path: '/devices/dev-1/screenshots',
    body: { path: '/a.png', size: -1, resolution: 7 },
    status: 422,
    fields: ['size', 'resolution'],
  },
  {
    name: 'screenshots: upload that is not an image',
    path: '/devices/dev-1/screenshots',
    body: () => imageForm(Buffer.from('GIF89a not allowed')),
    status: 415,
  },
  {
    name: 'screenshots: upload over SCREENSHOT_MAX_BYTES',
    path: '/devices/dev-1/screenshots',
    body: () => imageForm(Buffer.concat([PNG, Buffer.alloc(3000)])),
    status: 413,
  },
  {
    name: 'screenshots: multipart without a file',
    path: '/devices/dev-1/screenshots',
    body: () => {
      const fd = new FormData();
      fd.append('resolution', '1x1');
      return fd;
    },
    status: 422,
    fields: ['file'],
  },
  {
    name: 'screenshots: file under another field name',
    path: '/devices/dev-1/screenshots',
    body: () => imageForm(PNG, {}, 'image'),
    status: 400,
  },
  {
    name: 'screenshots: resolution too long',
    path: '/devices/dev-1/screenshots',
    body: () => imageForm(PNG, { resolution: 'r'.repeat(65) }),
    status: 422,
    fields: ['resolution'],
  },
  {
    name: 'screenshots: multipart to an unknown device',
    path: '/devices/ghost-device/screenshots',
    body: () => imageForm(PNG),
    status: 404,
  },
  {
    name: 'screenshots: truncated multipart',
    path: '/devices/dev-1/screenshots',
    body: '--XYZ\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n\x89PNG',
    headers: { 'content-type': 'multipart/form-data; boundary=XYZ' },
    status: 400,
  },
  {
    name: 'screenshots: multipart without boundary',
    path: '/devices/dev-1/screenshots',
    body: 'abc',
    headers: { 'content-type': 'multipart/form-data' },
    status: 400,
  },

  // commands from the mentor
  ...common('/devices/dev-1/commands', { commandid: 'c-1', command_text: 'status' }),
  // `commandid` may be absent (the host makes one, as Raqeem's backend did); `command_text` may not.
  { name: 'commands: missing fields', path: '/devices/dev-1/commands', body: {}, status: 422, fields: ['command_text'] },
  {
    name: 'commands: bad commandid and empty text',
    path: '/devices/dev-1/commands',
    body: { commandid: 'a b', command_text: '' },
    status: 422,
    fields: ['commandid', 'command_text'],
  },

  // command results
  ...common('/devices/commands/c-1/result', { status: 'running' }, { pathId: false }),
  { name: 'result: unknown command', path: '/devices/commands/no-such-command/result', body: { status: 'running' }, status: 404 },
  { name: 'result: bad status', path: '/devices/commands/c-1/result', body: { status: 'exploded' }, status: 422, fields: ['status'] },
  {
    name: 'result: exit_code and result out of range',
    path: '/devices/commands/c-1/result',
    body: { status: 'failed', exit_code: 256, result: 'r'.repeat(10_001) },
    status: 422,
    fields: ['exit_code', 'result'],
  },
  {
    name: 'result: illegal command id',
    path: '/devices/commands/bad%20id/result',
    body: { status: 'running' },
    status: 422,
    fields: ['commandid'],
  },
];

describe.each(DIALECTS)('bad input is refused and stores nothing (%s)', (dialect) => {
  let f: DevicesFixture;
  let baseline: Record<string, number>;
  beforeAll(async () => {
    f = await startDevices(dialect, { mentor: true, env: { BODY_LIMIT: '16kb', SCREENSHOT_MAX_BYTES: '2kb', INGEST_MAX_ITEMS: '3' } });
    expect((await f.call('POST', '/devices/register', { deviceid: 'dev-1' })).status).toBe(200);
    expect((await f.call('POST', '/devices/dev-1/commands', { commandid: 'c-1', command_text: 'status' })).status).toBe(200);
    baseline = await snapshotCounts(f);
    // The fixtures enqueued a delivery, so "no new delivery" below is meaningful.
    expect(baseline.relay_deliveries).toBe(1);
  });
  afterAll(async () => {
    await f?.cleanup();
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const body = typeof c.body === 'function' ? (c.body as () => unknown)() : c.body;
    const r = await f.call(c.method ?? 'POST', c.path, body, { headers: c.headers });
    expectProblem(r, c.status, c.fields);
    expect(await snapshotCounts(f)).toEqual(baseline);
  });

  it('stores a valid request after all of that (the host is healthy)', async () => {
    expect((await f.call('POST', '/devices/dev-1/metrics', { cpu_usage: 1 })).status).toBe(200);
    expect(await f.count('metrics')).toBe(1);
  });
});
