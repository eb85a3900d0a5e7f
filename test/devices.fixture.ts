/**
 * Fixtures for the devices host tests: a real host on an ephemeral loopback port over a fresh SQLite file or
 * PostgreSQL database, optionally forwarding to a sink standing in for the mentor, plus small HTTP and
 * database helpers. Not a test file itself.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect } from 'vitest';
import { QueryTypes } from 'sequelize';
import { loadConfig } from '../hosts/shared/config.js';
import { num } from '../lib/db.js';
import { startDevicesHost } from '../hosts/devices/server.js';
import type { DevicesHost } from '../hosts/devices/server.js';
import { createPgDatabase, createSqliteUrl } from './helpers/db.js';
import type { TestDialect } from './helpers/db.js';
import { startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';

export interface Reply {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export interface DevicesFixture {
  host: DevicesHost;
  sink: Sink | null;
  dataDir: string;
  /** Send a request to `/api/v1${p}` (or an absolute path with `root: true`); objects are sent as JSON. */
  call(method: string, p: string, body?: unknown, options?: { headers?: Record<string, string>; root?: boolean }): Promise<Reply>;
  count(table: string, where?: string): Promise<number>;
  rows(sql: string, replacements?: Record<string, unknown>): Promise<Array<Record<string, unknown>>>;
  cleanup(): Promise<void>;
}

export const TABLES = [
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

export async function startDevices(
  dialect: TestDialect,
  options: { mentor?: boolean; env?: Record<string, string> } = {},
): Promise<DevicesFixture> {
  const database = dialect === 'postgres' ? await createPgDatabase('devices_test') : createSqliteUrl();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'devices-data-'));
  const sink = options.mentor ? await startSink() : null;
  const config = loadConfig('devices', {
    DATABASE_URL: database.url,
    DATA_DIR: dataDir,
    PORT: '0',
    LOG_LEVEL: 'silent',
    FORWARD_BACKOFF_BASE: '0.05',
    FORWARD_TIMEOUT: '5',
    ...(sink ? { MENTOR_API_URL: sink.url } : {}),
    ...options.env,
  });
  let host: DevicesHost;
  try {
    host = await startDevicesHost(config);
  } catch (err) {
    await sink?.close();
    await database.drop();
    throw err;
  }
  const rows = (sql: string, replacements: Record<string, unknown> = {}) =>
    host.db.sequelize.query<Record<string, unknown>>(sql, { replacements, type: QueryTypes.SELECT });
  return {
    host,
    sink,
    dataDir,
    async call(method, p, body, { headers = {}, root = false } = {}) {
      const isRaw = typeof body === 'string' || body instanceof FormData || body instanceof Uint8Array;
      const res = await fetch(`${host.url}${root ? '' : '/api/v1'}${p}`, {
        method,
        headers: { ...(body !== undefined && !isRaw ? { 'content-type': 'application/json' } : {}), ...headers },
        body: body === undefined ? undefined : isRaw ? (body as RequestInit['body']) : JSON.stringify(body),
      });
      const text = await res.text();
      let json: unknown = null;
      try {
        json = JSON.parse(text);
      } catch {
        json = null;
      }
      return { status: res.status, headers: res.headers, text, json };
    },
    async count(table, where = '1=1') {
      const [r] = await rows(`SELECT COUNT(*) AS n FROM ${table} WHERE ${where}`);
      return num(r!.n);
    },
    rows,
    async cleanup() {
      await host.close();
      if (host.relay.dispatcher.isRunning) throw new Error('the dispatcher was left running');
      await sink?.close();
      await database.drop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Counts of every table, to prove a rejected request stored nothing and enqueued nothing. */
export async function snapshotCounts(f: DevicesFixture): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of TABLES) out[t] = await f.count(t);
  return out;
}

/** An RFC 9457 body with the given status, naming these fields (when given). */
export function expectProblem(r: Reply, status: number, fields?: string[]): void {
  expect(r.status, r.text).toBe(status);
  expect(r.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(r.json).toMatchObject({ type: expect.any(String), title: expect.any(String), status, detail: expect.any(String) });
  if (fields) {
    expect(Array.isArray(r.json.errors), r.text).toBe(true);
    const paths = (r.json.errors as Array<{ path: string; message: string }>).map((e) => e.path);
    for (const f of fields) expect(paths, r.text).toContain(f);
    for (const e of r.json.errors) expect(e.message).toEqual(expect.any(String));
  }
}

export const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52]);
export const JPEG = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46]);
export const WEBP = Buffer.concat([Buffer.from('RIFF'), Buffer.from([0x24, 0, 0, 0]), Buffer.from('WEBPVP8 ')]);

export function imageForm(bytes: Buffer, fields: Record<string, string> = {}, name = 'file'): FormData {
  const form = new FormData();
  form.append(name, new Blob([new Uint8Array(bytes)]), 'shot.bin');
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  return form;
}
