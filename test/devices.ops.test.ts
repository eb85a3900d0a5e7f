/** Health, readiness, metrics, OpenAPI, request ids and log redaction of the devices host. */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../hosts/shared/logging.js';
import { DIALECTS } from './helpers/db.js';
import { eventually } from './helpers/sink.js';
import { expectProblem, startDevices } from './devices.fixture.js';
import type { DevicesFixture } from './devices.fixture.js';

describe.each(DIALECTS)('devices host operations endpoints (%s)', (dialect) => {
  let f: DevicesFixture | undefined;
  afterEach(async () => {
    await f?.cleanup();
    f = undefined;
  });

  it('serves /health, /health/live and /health/ready', async () => {
    f = await startDevices(dialect);
    expect(await f.call('GET', '/health', undefined, { root: true })).toMatchObject({
      status: 200,
      json: { status: 'ok', service: 'devices' },
    });
    expect((await f.call('GET', '/health/live', undefined, { root: true })).status).toBe(200);
    expect(await f.call('GET', '/health/ready', undefined, { root: true })).toMatchObject({ status: 200, json: { status: 'ok' } });
  });

  it('answers /health/ready with a 503 problem when the database is unreachable', async () => {
    f = await startDevices(dialect);
    await f.host.relay.stop();
    await f.host.db.close();
    const r = await f.call('GET', '/health/ready', undefined, { root: true });
    expectProblem(r, 503);
    expect((await f.call('GET', '/health/live', undefined, { root: true })).status).toBe(200);
  });

  it('exposes Prometheus metrics, including process defaults and forwarding counters', async () => {
    f = await startDevices(dialect, { mentor: true });
    await f.call('POST', '/devices/register', { deviceid: 'dev-1' });
    const fx = f;
    await eventually(async () => (await fx.count('relay_deliveries', "status = 'succeeded'")) === 1);
    const r = await fetch(`${f.host.url}/metrics`);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await r.text();
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).toMatch(/forward_success_total\{data_type="device\.registered",target="mentor"\} 1/);
    expect(text).toContain('forward_queue_depth');
  });

  it('publishes an OpenAPI 3.1 document generated from the validation schemas', async () => {
    f = await startDevices(dialect);
    const doc = (await f.call('GET', '/openapi.json', undefined, { root: true })).json;
    expect(doc.openapi).toBe('3.1.0');
    for (const p of [
      '/api/v1/devices/register',
      '/api/v1/devices/{id}/metrics',
      '/api/v1/devices/{id}/processes',
      '/api/v1/devices/{id}/activities',
      '/api/v1/devices/{id}/alerts',
      '/api/v1/devices/{id}/screenshots',
      '/api/v1/devices/{id}/commands/pending',
      '/api/v1/devices/commands/{commandid}/result',
      '/api/v1/screenshots/{screenshotid}',
      '/health/ready',
      '/metrics',
    ]) {
      expect(doc.paths, p).toHaveProperty([p]);
    }
    // One sample or an array of them: the object form is one branch, the array's items the other.
    const [metrics, batch] = doc.paths['/api/v1/devices/{id}/metrics'].post.requestBody.content['application/json'].schema.anyOf;
    expect(batch).toMatchObject({ type: 'array', maxItems: 1000, items: { type: 'object' } });
    expect(metrics.properties.cpu_usage.anyOf ?? [metrics.properties.cpu_usage]).toContainEqual(
      expect.objectContaining({ minimum: 0, maximum: 100 }),
    );
    const register = doc.paths['/api/v1/devices/register'].post.requestBody.content['application/json'].schema;
    expect(register.required).toEqual(['deviceid']);
    expect(register.properties.deviceid.pattern).toBe('^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$');
    const shots = doc.paths['/api/v1/devices/{id}/screenshots'].post.requestBody.content;
    expect(Object.keys(shots).sort()).toEqual(['application/json', 'multipart/form-data']);
    const list = doc.paths['/api/v1/devices/{id}/metrics'].get.parameters;
    expect(list).toContainEqual(expect.objectContaining({ name: 'limit', in: 'query' }));
    expect(list).toContainEqual({
      name: 'id',
      in: 'path',
      required: true,
      schema: expect.objectContaining({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$' }),
    });
  });

  it('echoes a valid X-Request-ID, replaces an invalid one, and 404s unknown routes as problems', async () => {
    f = await startDevices(dialect);
    const kept = await f.call('GET', '/health', undefined, { root: true, headers: { 'x-request-id': 'abc-123' } });
    expect(kept.headers.get('x-request-id')).toBe('abc-123');
    const replaced = await f.call('GET', '/health', undefined, { root: true, headers: { 'x-request-id': 'x'.repeat(300) } });
    expect(replaced.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect((await f.call('GET', '/health', undefined, { root: true })).headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expectProblem(await f.call('GET', '/no/such/route'), 404);
    expect(kept.headers.get('x-powered-by')).toBeNull();
  });
});

describe('logging', () => {
  it('redacts authorization headers, signatures, secrets and tokens', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const logger = createLogger({ service: 'devices', level: 'info', destination });
    logger.info(
      {
        req: { headers: { authorization: 'Bearer top-secret-token', 'webhook-signature': 'v1,c2lnbmF0dXJl', 'x-request-id': 'r1' } },
        endpoint: { secret: 'whsec_c2VjcmV0', url: 'https://example.com' },
        admin: { token: 'admin-token-value' },
      },
      'hello',
    );
    expect(lines).toHaveLength(1);
    const line = lines[0]!;
    for (const leaked of ['top-secret-token', 'c2lnbmF0dXJl', 'whsec_c2VjcmV0', 'admin-token-value']) expect(line).not.toContain(leaked);
    const parsed = JSON.parse(line);
    expect(parsed).toMatchObject({
      service: 'devices',
      msg: 'hello',
      endpoint: { url: 'https://example.com' },
      req: { headers: { 'x-request-id': 'r1' } },
    });
  });
});
