/**
 * No secret in the devices host's logs: the whole host (pino-http access log, relay, webhooks plugin,
 * management API) at debug level, driven through registration, a secret read, a rotation, signed forwards
 * and failed auth, and every line it wrote searched for the admin token, webhook secrets and the signing
 * secret.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../hosts/shared/config.js';
import { createLogger, secretsOf } from '../hosts/shared/logging.js';
import { generateSecret } from '../lib/signing.js';
import { startDevicesHost } from '../hosts/devices/server.js';
import type { DevicesHost } from '../hosts/devices/server.js';
import { createSqliteUrl } from './helpers/db.js';
import { eventually, startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';

/** A secret as a query parameter, in headers that are not Authorization, in a cookie, path and body. */
async function sendInWrongPlaces(url: string, secret: string): Promise<void> {
  const e = encodeURIComponent(secret);
  for (const p of [
    `/api/v1/webhooks?access_token=${e}`,
    `/api/v1/deliveries?token=${e}`,
    `/api/v1/devices?api_key=${e}`,
    `/api/v1/devices?q=${e}`,
    `/api/v1/devices/${e}/metrics`,
  ]) {
    await (await fetch(`${url}${p}`)).arrayBuffer();
  }
  const headers = {
    'x-api-key': secret,
    cookie: `session=${secret}`,
    'x-auth-token': secret,
    'x-request-id': 'wrong-place-probe',
    'content-type': 'application/json',
  };
  await (await fetch(`${url}/api/v1/webhooks`, { headers })).arrayBuffer();
  await (
    await fetch(`${url}/api/v1/devices/register`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ deviceid: 'dev-w', device_name: secret, token: secret }),
    })
  ).arrayBuffer();
  await (
    await fetch(`${url}/api/v1/devices/register`, { method: 'POST', headers, body: JSON.stringify({ deviceid: secret }) })
  ).arrayBuffer();
}

describe('devices host logs', () => {
  let host: DevicesHost | undefined;
  const sinks: Sink[] = [];
  const dirs: string[] = [];
  afterEach(async () => {
    await host?.close();
    await Promise.all(sinks.splice(0).map((s) => s.close()));
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('never contain the admin token, webhook secrets or the mentor signing secret', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const mentor = await startSink();
    const receiver = await startSink();
    sinks.push(mentor, receiver);
    const db = createSqliteUrl();
    const dataDir = mkdtempSync(path.join(tmpdir(), 'secrets-'));
    dirs.push(db.dir, dataDir);
    const adminToken = 'admin-token-that-must-not-leak-0123456789';
    const signingSecret = generateSecret();
    const encryptionKey = randomBytes(32).toString('base64');
    const config = loadConfig('devices', {
      DATABASE_URL: db.url,
      DATA_DIR: dataDir,
      PORT: '0',
      LOG_LEVEL: 'debug',
      MENTOR_API_URL: mentor.url,
      MENTOR_SIGNING_SECRET: signingSecret,
      RELAY_ADMIN_TOKEN: adminToken,
      RELAY_ENCRYPTION_KEY: encryptionKey,
      WEBHOOK_ALLOWED_HOSTS: '127.0.0.1',
      FORWARD_BACKOFF_BASE: '0.05',
    });
    host = await startDevicesHost(config, {
      logger: createLogger({ level: 'debug', service: 'devices', destination, secrets: secretsOf(config) }),
    });
    const call = async (method: string, p: string, body?: unknown, token: string | null = adminToken) => {
      const res = await fetch(`${host!.url}/api/v1${p}`, {
        method,
        headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: res.status, json: (await res.json().catch(() => null)) as Record<string, unknown> | null };
    };

    const created = await call('POST', '/webhooks', { url: `${receiver.url}/hook`, events: ['*'] });
    expect(created.status).toBe(201);
    const id = String(created.json!.id);
    const first = String(created.json!.secret);
    const read = await call('GET', `/webhooks/${id}/secret`);
    expect(read.status).toBe(200);
    const rotated = await call('POST', `/webhooks/${id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    const second = String((rotated.json as { secret?: string }).secret ?? JSON.stringify(rotated.json));
    expect((await call('GET', '/webhooks', undefined, 'wrong-token')).status).toBe(401);
    expect((await call('POST', '/devices/register', { deviceid: 'dev-s' }, null)).status).toBe(200);
    expect((await call('POST', '/devices/dev-s/metrics', { cpu_usage: 5 }, null)).status).toBe(200);
    await mentor.waitFor(2);
    await receiver.waitFor(2);
    await eventually(() => lines.some((l) => l.includes('forwarded metric.submitted to webhooks')));
    // Every secret in every wrong place a client could put it.
    for (const secret of [adminToken, signingSecret, encryptionKey, first, second]) await sendInWrongPlaces(host.url, secret);

    const log = lines.join('');
    expect(log).toContain('"url"'); // the access log and relay did write lines
    expect(log).toContain('[redacted]'); // the authorization header was there, and redacted
    for (const secret of [adminToken, first, second, signingSecret, encryptionKey, encodeURIComponent(encryptionKey)]) {
      expect(log).not.toContain(secret);
      expect(log).not.toContain(secret.replace(/^whsec_/, ''));
    }
  });

  it('redact credentials by name in the logged url, query and headers even when no secret values are configured', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const db = createSqliteUrl();
    const dataDir = mkdtempSync(path.join(tmpdir(), 'secrets-'));
    dirs.push(db.dir, dataDir);
    const adminToken = 'admin-token-by-name-0123456789abcdef';
    const config = loadConfig('devices', {
      DATABASE_URL: db.url,
      DATA_DIR: dataDir,
      PORT: '0',
      LOG_LEVEL: 'info',
      RELAY_ADMIN_TOKEN: adminToken,
    });
    // No `secrets`: only the name-based redaction of the access log is at work.
    host = await startDevicesHost(config, { logger: createLogger({ level: 'info', service: 'devices', destination }) });
    const probe = 'probe-value-not-configured-anywhere';
    await sendInWrongPlaces(host.url, probe);
    const log = lines.join('');
    expect(log).toContain('access_token=[redacted]');
    expect(log).toContain('api_key=[redacted]');
    expect(log).toContain('"x-api-key":"[redacted]"');
    // Only what is not a credential by name (a path segment, an unnamed parameter) may carry it.
    const leaking = lines.filter((l) => l.includes(probe)).map((l) => JSON.parse(l) as { req?: { url?: string } });
    for (const l of leaking) expect(l.req?.url ?? '').toMatch(/q=|\/devices\/probe/);
  });
});
