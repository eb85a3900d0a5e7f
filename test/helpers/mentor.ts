/** A mentor host on a fresh test database, listening on an ephemeral loopback port, plus a tiny client. */
import { randomUUID } from 'node:crypto';
import { loadConfig } from '../../hosts/shared/config.js';
import { signHeaders } from '../../lib/signing.js';
import { startMentorHost } from '../../hosts/mentor/server.js';
import type { MentorHost } from '../../hosts/mentor/server.js';
import { createPgDatabase, createSqliteUrl } from './db.js';
import type { TestDialect } from './db.js';

export interface MentorFixture {
  host: MentorHost;
  url: string;
  secret: string | undefined;
  /** POST JSON, signed when the fixture has a secret (unless `sign: false`). */
  post(path: string, body: unknown, o?: { sign?: boolean; headers?: Record<string, string> }): Promise<Reply>;
  get(path: string): Promise<Reply>;
  close(): Promise<void>;
}

export interface Reply {
  status: number;
  contentType: string;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any -- test assertions read arbitrary JSON
}

async function reply(res: Response): Promise<Reply> {
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep the text
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body };
}

export async function startMentorFixture(dialect: TestDialect, env: Record<string, string> = {}): Promise<MentorFixture> {
  const target = dialect === 'postgres' ? await createPgDatabase('mentor_test') : createSqliteUrl();
  const config = loadConfig('mentor', { DATABASE_URL: target.url, PORT: '0', LOG_LEVEL: 'silent', ...env });
  let host: MentorHost;
  try {
    host = await startMentorHost(config, { host: '127.0.0.1' });
  } catch (err) {
    await target.drop();
    throw err;
  }
  const secret = config.mentorSigningSecret;
  return {
    host,
    url: host.url,
    secret,
    async post(path, body, o = {}) {
      const raw = typeof body === 'string' ? body : JSON.stringify(body);
      const headers: Record<string, string> = { 'content-type': 'application/json', ...o.headers };
      if (secret && o.sign !== false) Object.assign(headers, signHeaders({ id: `msg_${randomUUID()}`, body: raw, secret }));
      return reply(await fetch(host.url + path, { method: 'POST', headers, body: raw }));
    },
    async get(path) {
      return reply(await fetch(host.url + path));
    },
    async close() {
      await host.close();
      await target.drop();
    },
  };
}

let n = 0;
const next = () => `${process.pid}-${++n}-${randomUUID().slice(0, 8)}`;

/** Records in the exact shapes the devices host forwards. */
export const fixtures = {
  registration: (deviceid: string, extra: Record<string, unknown> = {}) => ({
    deviceid,
    device_name: 'Test Device',
    device_type: 'laptop',
    os: 'linux',
    device_location: 'lab',
    ip_address: '10.0.0.5',
    mac_address: 'aa:bb:cc:dd:ee:ff',
    current_user: 'alice',
    last_seen: new Date().toISOString(),
    is_online: true,
    ...extra,
  }),
  metric: (deviceid: string, extra: Record<string, unknown> = {}) => ({
    metricid: `m-${next()}`,
    deviceid,
    timestamp: new Date().toISOString(),
    cpu_usage: 42.5,
    cpu_temp: 55,
    memory_total: 16_000_000_000,
    memory_used: 8_000_000_000,
    swap_used: 0,
    disk_total: 512_000_000_000,
    disk_used: 100_000_000_000,
    net_bytes_in: 1234,
    net_bytes_out: 5678,
    ...extra,
  }),
  activity: (deviceid: string, extra: Record<string, unknown> = {}) => ({
    activityid: `a-${next()}`,
    deviceid,
    timestamp: new Date().toISOString(),
    activity_type: 'app_launch',
    description: 'Opened the editor',
    app: 'code',
    duration: 120,
    ...extra,
  }),
  alert: (deviceid: string, extra: Record<string, unknown> = {}) => ({
    alertid: `al-${next()}`,
    deviceid,
    timestamp: new Date().toISOString(),
    level: 'warning',
    alert_type: 'cpu_high',
    message: 'CPU above 90%',
    value: 93.1,
    threshold: 90,
    ...extra,
  }),
  screenshot: (deviceid: string, extra: Record<string, unknown> = {}) => ({
    screenshotid: `s-${next()}`,
    deviceid,
    timestamp: new Date().toISOString(),
    path: `screenshots/${deviceid}/shot.png`,
    resolution: '1920x1080',
    size: 204_800,
    content_type: 'image/png',
    ...extra,
  }),
};
