/**
 * Generated bad input for every devices ingest route (fast-check, at least 1,000 requests per route, on
 * SQLite and PostgreSQL): each is answered 4xx as problem+json, changes no row of any table (records, the
 * outbox, commands), and the host keeps serving. See fuzz.fixture.ts for the defects.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../hosts/shared/config.js';
import { generateSecret, signHeaders } from '../lib/signing.js';
import { startDevicesHost } from '../hosts/devices/server.js';
import type { DevicesHost } from '../hosts/devices/server.js';
import { createPgDatabase, createSqliteUrl, DIALECTS } from './helpers/db.js';
import { startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';
import { badArray, badObject, badPathId, FUZZ_RUNS, fuzzRoute, jsonRequest, structural } from './fuzz.fixture.js';
import type { FuzzRequest, FuzzTarget, Spec } from './fuzz.fixture.js';

const LIMIT = 16 * 1024;
const TABLES = [
  'devices',
  'metrics',
  'activities',
  'processes',
  'alerts',
  'screenshots',
  'commands',
  'relay_events',
  'relay_deliveries',
] as const;
const DEVICE = 'fuzz-device';

const t255 = { t: 'text', max: 255 } as const;
const count = { t: 'int', min: 0, max: Number.MAX_SAFE_INTEGER } as const;

const registerSpec: Spec = {
  deviceid: { t: 'id', required: true },
  device_name: t255,
  device_type: t255,
  os: t255,
  device_location: t255,
  ip_address: t255,
  mac_address: t255,
  current_user: t255,
};
const metricsSpec: Spec = {
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
const processSpec: Spec = {
  pid: { t: 'int', min: 0, max: Number.MAX_SAFE_INTEGER, required: true },
  process_name: { t: 'text', max: 255, required: true },
  cpu: { t: 'num', min: 0, max: 100 },
  memory: count,
  command_text: { t: 'text', max: 4096, free: true },
};
const activitySpec: Spec = {
  activity_type: { t: 'text', max: 255, required: true, min1: true },
  description: { t: 'text', max: 1000, free: true },
  app: t255,
  duration: { t: 'int', min: 0, max: 86_400 },
};
const alertSpec: Spec = {
  level: { t: 'enum', values: ['info', 'warning', 'critical'], required: true },
  alert_type: { t: 'text', max: 255, required: true, min1: true },
  message: { t: 'text', max: 500, free: true },
  value: { t: 'num', min: -Number.MAX_VALUE, max: Number.MAX_VALUE },
  threshold: { t: 'num', min: -Number.MAX_VALUE, max: Number.MAX_VALUE },
};
const screenshotSpec: Spec = {
  path: { t: 'text', max: 1024, required: true, min1: true },
  resolution: { t: 'text', max: 64 },
  size: count,
};
const commandSpec: Spec = {
  // Optional: without one the devices host makes one (Raqeem's create).
  commandid: { t: 'id' },
  command_text: { t: 'text', max: 4096, required: true, min1: true, free: true },
  created_at: { t: 'text', max: 64 },
};
const resultSpec: Spec = {
  status: { t: 'enum', values: ['running', 'completed', 'failed'], required: true },
  result: { t: 'text', max: 10_000, free: true },
  exit_code: { t: 'int', min: 0, max: 255 },
};

const validMetrics = { cpu_usage: 12.5, cpu_temp: 40, memory_total: 8_000, memory_used: 4_000 };
const validProcess = { pid: 42, process_name: 'node', cpu: 1.5, memory: 1024, command_text: 'node server.js' };
const validActivity = { activity_type: 'app_focus', description: 'editor', app: 'code', duration: 30 };
const validAlert = { level: 'warning', alert_type: 'cpu', message: 'hot', value: 91, threshold: 90 };
const validScreenshot = { path: '/shots/a.png', resolution: '1920x1080', size: 1000 };
const validResult = { status: 'completed', result: 'ok', exit_code: 0 };

/** A multipart upload with something wrong: not an image, no file, the wrong field, a broken form. */
const badUpload = (p: string): fc.Arbitrary<FuzzRequest> => {
  const boundary = 'fuzzboundary';
  const part = (name: string, filename: string | null, type: string, bytes: Uint8Array) =>
    `--${boundary}\r\nContent-Disposition: form-data; name="${name}"${filename ? `; filename="${filename}"` : ''}\r\nContent-Type: ${type}\r\n\r\n${Buffer.from(bytes).toString('latin1')}\r\n`;
  return fc
    .record({
      field: fc.constantFrom('file', 'image', 'upload', ''),
      type: fc.constantFrom('image/png', 'image/jpeg', 'text/plain', 'application/octet-stream'),
      bytes: fc.uint8Array({ minLength: 0, maxLength: 64 }).filter((b) => b[0] !== 0x89 && b[0] !== 0xff && b[0] !== 0x52),
      close: fc.boolean(),
    })
    .map(({ field, type, bytes, close }) => ({
      method: 'POST',
      path: p,
      headers: { 'content-type': `multipart/form-data; boundary=${boundary}` },
      body: part(field, 'shot.png', type, bytes) + (close ? `--${boundary}--\r\n` : ''),
      defect: 'bad multipart upload',
    }));
};

/** A valid PNG header: the image checks pass, so a refusal is about the device field. */
const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52]);

/** `POST /screenshots`: the upload defects beside a valid device field, or a valid image with a bad device field. */
const badFormUpload = (): fc.Arbitrary<FuzzRequest> => {
  const boundary = 'fuzzboundary';
  const headers = { 'content-type': `multipart/form-data; boundary=${boundary}` };
  const field = (name: string, value: string) => `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`;
  const image = `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="shot.png"\r\nContent-Type: image/png\r\n\r\n${PNG.toString('latin1')}\r\n--${boundary}--\r\n`;
  return fc.oneof(
    badUpload('/screenshots').map((r) => ({ ...r, body: field('device_id', DEVICE) + String(r.body) })),
    fc.record({ name: fc.constantFrom('device_id', 'deviceid'), id: badPathId }).map(({ name, id }) => ({
      method: 'POST',
      path: '/screenshots',
      headers,
      body: field(name, id) + image,
      defect: 'bad or unknown device field',
    })),
    fc.constant({
      method: 'POST',
      path: '/screenshots',
      headers,
      body: field('device_id', DEVICE) + field('deviceid', `${DEVICE}-other`) + image,
      defect: 'device_id and deviceid disagree',
    }),
  );
};

/** Body defects of an object route, path defects, and request-level defects. */
function objectRoute(
  p: (id: string) => string,
  spec: Spec,
  valid: Record<string, unknown>,
  pathIds = true,
  arrayOk = false,
): fc.Arbitrary<FuzzRequest> {
  const arbs: Array<fc.Arbitrary<FuzzRequest>> = [
    badObject(spec, valid).map(jsonRequest('POST', p(DEVICE), 'invalid field')),
    badObject(spec, valid).map(jsonRequest('POST', p(DEVICE), 'invalid field')),
    structural('POST', p(DEVICE), valid, { limit: LIMIT, expectsArray: false, arrayOk }),
  ];
  if (pathIds) arbs.push(badPathId.map((id) => jsonRequest('POST', p(id), 'bad or unknown path id')(valid)));
  return fc.oneof(...arbs);
}

function arrayRoute(p: (id: string) => string, spec: Spec, item: Record<string, unknown>): fc.Arbitrary<FuzzRequest> {
  return fc.oneof(
    badArray(spec, item).map(jsonRequest('POST', p(DEVICE), 'one bad item among good ones')),
    badArray(spec, item).map(jsonRequest('POST', p(DEVICE), 'one bad item among good ones')),
    structural('POST', p(DEVICE), [item, item], { limit: LIMIT, expectsArray: true }),
    badPathId.map((id) => jsonRequest('POST', p(id), 'bad or unknown path id')([item])),
  );
}

describe.each(DIALECTS)('bad input to every devices ingest route (%s)', (dialect) => {
  let host: DevicesHost;
  let sink: Sink;
  let drop: () => Promise<void>;
  let dataDir: string;
  let target: FuzzTarget;
  const secret = generateSecret();
  const COMMAND = `cmd-${randomUUID()}`;

  beforeAll(async () => {
    sink = await startSink();
    const database = dialect === 'postgres' ? await createPgDatabase('fuzz_devices') : createSqliteUrl();
    drop = database.drop;
    dataDir = mkdtempSync(path.join(tmpdir(), 'fuzz-devices-'));
    const config = loadConfig('devices', {
      DATABASE_URL: database.url,
      DATA_DIR: dataDir,
      PORT: '0',
      LOG_LEVEL: 'silent',
      MENTOR_API_URL: sink.url,
      MENTOR_SIGNING_SECRET: secret,
      BODY_LIMIT: String(LIMIT),
    });
    host = await startDevicesHost(config, { host: '127.0.0.1' });
    // Something for bad requests to damage: a device with records, processes and a command.
    const post = (p: string, body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${host.url}/api/v1${p}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
    expect((await post('/devices/register', { deviceid: DEVICE, device_name: 'Fuzz' })).status).toBe(200);
    expect((await post(`/devices/${DEVICE}/metrics`, validMetrics)).status).toBe(200);
    expect((await post(`/devices/${DEVICE}/processes`, [validProcess, { ...validProcess, pid: 7 }])).status).toBe(200);
    const cmd = JSON.stringify({ commandid: COMMAND, deviceid: DEVICE, command_text: 'status' });
    expect((await post(`/devices/${DEVICE}/commands`, cmd, signHeaders({ id: `msg_${randomUUID()}`, body: cmd, secret }))).status).toBe(
      200,
    );
    target = {
      baseUrl: `${host.url}/api/v1`,
      healthUrl: `${host.url}/health`,
      db: host.db,
      tables: TABLES,
      // Rows a bad request could update in place: the device, its process list, its command.
      unchanged:
        'SELECT d.deviceid, d.device_name, d.last_seen, (SELECT COUNT(*) FROM processes) AS procs, (SELECT MAX(pid) FROM processes) AS maxpid, c.status, c.updated_at FROM devices d, commands c ORDER BY d.deviceid',
      // Commands from the mentor are signed over the exact body; the signature is valid, the body is not.
      decorate: (r) =>
        r.path.endsWith('/commands') && r.body !== undefined
          ? { ...r, headers: { ...r.headers, ...signHeaders({ id: `msg_${randomUUID()}`, body: r.body, secret }) } }
          : r,
    };
  }, 60_000);

  afterAll(async () => {
    await host?.close();
    await sink?.close();
    await drop?.();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const routes: Array<[string, () => fc.Arbitrary<FuzzRequest>]> = [
    [
      'POST /devices/register',
      () => objectRoute(() => '/devices/register', registerSpec, { deviceid: DEVICE, device_name: 'Fuzz' }, false),
    ],
    // One sample, or an array of samples (a batch from an agent that was offline).
    [
      'POST /devices/{id}/metrics',
      () =>
        fc.oneof(
          objectRoute((id) => `/devices/${id}/metrics`, metricsSpec, validMetrics, true, true),
          badArray(metricsSpec, validMetrics).map(jsonRequest('POST', `/devices/${DEVICE}/metrics`, 'one bad sample among good ones')),
        ),
    ],
    ['POST /devices/{id}/processes', () => arrayRoute((id) => `/devices/${id}/processes`, processSpec, validProcess)],
    ['POST /devices/{id}/activities', () => arrayRoute((id) => `/devices/${id}/activities`, activitySpec, validActivity)],
    ['POST /devices/{id}/alerts', () => arrayRoute((id) => `/devices/${id}/alerts`, alertSpec, validAlert)],
    [
      'POST /devices/{id}/screenshots',
      () =>
        fc.oneof(
          objectRoute((id) => `/devices/${id}/screenshots`, screenshotSpec, validScreenshot),
          badUpload(`/devices/${DEVICE}/screenshots`),
        ),
    ],
    ['POST /screenshots', badFormUpload],
    [
      'POST /devices/{id}/commands',
      () =>
        objectRoute((id) => `/devices/${id}/commands`, commandSpec, {
          commandid: `new-${randomUUID()}`,
          deviceid: DEVICE,
          command_text: 'status',
        }),
    ],
    [
      'POST /devices/commands/{commandid}/result',
      () =>
        fc.oneof(
          objectRoute(() => `/devices/commands/${COMMAND}/result`, resultSpec, validResult, false),
          badPathId.map((id) => jsonRequest('POST', `/devices/commands/${id}/result`, 'bad or unknown command id')(validResult)),
        ),
    ],
  ];

  it.each(routes)('%s: every generated bad request is refused whole', { timeout: 600_000 }, async (name, requests) => {
    const sent = await fuzzRoute(target, name, requests());
    expect(sent).toBeGreaterThanOrEqual(FUZZ_RUNS);
  });
});
