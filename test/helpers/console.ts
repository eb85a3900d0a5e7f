/**
 * Fixture for the console tests: a real devices host (standalone, admin token set, webhooks allowed to
 * reach loopback receivers, a short webhook retry schedule) on a fresh SQLite file or PostgreSQL database,
 * and a small client that speaks bearer, cookie and CSRF.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../hosts/shared/config.js';
import { createLogger } from '../../hosts/shared/logging.js';
import { startDevicesHost } from '../../hosts/devices/server.js';
import type { DevicesHost } from '../../hosts/devices/server.js';
import { createPgDatabase, createSqliteUrl } from './db.js';
import type { TestDialect } from './db.js';

export const CONSOLE_ADMIN_TOKEN = 'console-admin-token-5d2e8a41f0';

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- assertions read arbitrary JSON
  body: any;
}

export interface Auth {
  /** `Authorization: Bearer` (the admin token by default; `null` sends none). */
  bearer?: string | null;
  cookie?: string;
  csrf?: string;
}

export interface ConsoleHost {
  host: DevicesHost;
  /** Every log line the host wrote (at debug level). */
  logs: string[];
  url: string;
  /** A request to the host; objects are sent as JSON. Without `auth` the admin bearer token is sent. */
  call(method: string, p: string, body?: unknown, auth?: Auth): Promise<Answer>;
  /** Register a device and post `n` metrics for it (each becomes a `metric.submitted` event). */
  ingest(deviceid: string, n: number, metric?: Record<string, unknown>): Promise<void>;
  /** Sign in with a token or portal token; returns the cookie pair and the CSRF token. */
  signIn(body: { token?: string; portal_token?: string }): Promise<{ cookie: string; csrf: string; answer: Answer }>;
  cleanup(): Promise<void>;
}

export async function startConsoleHost(dialect: TestDialect, o: { schedule?: number[] } = {}): Promise<ConsoleHost> {
  const database = dialect === 'postgres' ? await createPgDatabase('console_test') : createSqliteUrl();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'console-data-'));
  const config = loadConfig('devices', {
    DATABASE_URL: database.url,
    DATA_DIR: dataDir,
    PORT: '0',
    LOG_LEVEL: 'silent',
    RELAY_ADMIN_TOKEN: CONSOLE_ADMIN_TOKEN,
    WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
  });
  const logs: string[] = [];
  const logger = createLogger({ level: 'debug', service: 'devices', destination: { write: (line: string) => void logs.push(line) } });
  let host: DevicesHost;
  try {
    host = await startDevicesHost(config, {
      logger,
      webhooks: { schedule: o.schedule ?? [100, 100], circuit: { cooldownMs: 50, maxCooldownMs: 200 } },
    });
  } catch (err) {
    await database.drop();
    throw err;
  }
  const call: ConsoleHost['call'] = async (method, p, body, auth = {}) => {
    const headers: Record<string, string> = {};
    const bearer = auth.bearer === undefined && !auth.cookie ? CONSOLE_ADMIN_TOKEN : auth.bearer;
    if (bearer) headers.authorization = `Bearer ${bearer}`;
    if (auth.cookie) headers.cookie = auth.cookie;
    if (auth.csrf) headers['x-csrf-token'] = auth.csrf;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(host.url + p, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: 'manual',
    });
    const text = await res.text();
    let parsed: unknown = null;
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = null;
    }
    return { status: res.status, headers: res.headers, text, body: parsed };
  };
  return {
    host,
    logs,
    url: host.url,
    call,
    async ingest(deviceid, n, metric = { cpu_usage: 42.5, memory_used: 1024 }) {
      const r = await call('POST', '/api/v1/devices/register', { deviceid, device_name: `Device ${deviceid}` }, { bearer: null });
      if (r.status !== 200) throw new Error(`register failed: ${r.status} ${r.text}`);
      for (let i = 0; i < n; i++) {
        const m = await call('POST', `/api/v1/devices/${deviceid}/metrics`, metric, { bearer: null });
        if (m.status !== 200) throw new Error(`metrics failed: ${m.status} ${m.text}`);
      }
    },
    async signIn(body) {
      const answer = await call('POST', '/console/session', body, { bearer: null });
      if (answer.status !== 200) throw new Error(`sign-in failed: ${answer.status} ${answer.text}`);
      const cookie = answer.headers.get('set-cookie')!.split(';')[0]!;
      return { cookie, csrf: answer.body.csrf_token, answer };
    },
    async cleanup() {
      await host.close();
      await database.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
