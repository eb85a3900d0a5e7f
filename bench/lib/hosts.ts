/**
 * The hosts under test as real processes: `raqeem-relay devices|mentor|worker` through `hosts/cli.ts`,
 * and the seed's design (`bench/baselines/seed-devices.ts`). Logs go to a file per process (the default
 * `info` level, as in production), which the operations guide quotes from.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { QueryTypes } from 'sequelize';
import { request } from 'undici';
import { openDatabase } from '../../lib/db.js';
import type { Database } from '../../lib/db.js';
import { createPgDatabase } from '../../test/helpers/db.js';
import { ROOT } from './processes.js';

export type Dialect = 'sqlite' | 'postgres';

/** A loopback port free right now (the bench runs one scenario at a time, so nobody races us for it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** A fresh database for one host of one scenario, dropped by `drop()`. */
export interface BenchDb {
  url: string;
  drop(): Promise<void>;
}

export async function freshDatabase(dialect: Dialect, dir: string, name: string): Promise<BenchDb> {
  if (dialect === 'sqlite') return { url: `sqlite:${path.join(dir, `${name}.sqlite`)}`, drop: async () => undefined };
  return createPgDatabase(`bench_${name}`);
}

/** A scratch directory plus every database and process made in it, cleaned up together. */
export class Workspace {
  readonly dir = mkdtempSync(path.join(tmpdir(), 'relay-bench-'));
  private readonly dbs: BenchDb[] = [];
  private readonly procs: HostProc[] = [];

  constructor(readonly dialect: Dialect) {}

  async database(name: string): Promise<BenchDb> {
    const db = await freshDatabase(this.dialect, this.dir, name);
    this.dbs.push(db);
    return db;
  }

  track(p: HostProc): HostProc {
    this.procs.push(p);
    return p;
  }

  async cleanup(): Promise<void> {
    await Promise.all(this.procs.map((p) => p.kill()));
    for (const db of this.dbs) await db.drop().catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export interface HostProc {
  name: string;
  url: string;
  port: number;
  proc: ChildProcess;
  pid: number;
  logFile: string;
  exited: Promise<number | string>;
  /** Resident set size in bytes, from /proc. */
  rss(): number;
  stop(graceMs?: number): Promise<void>;
  kill(): Promise<void>;
  log(): string;
}

/** Variables of the harness's environment that must not leak into a host's configuration. */
const SCRUB =
  /^(PORT|HOST|DATABASE_URL|DATA_DIR|MENTOR_|DEVICES_API_URL|FORWARD_|RELAY_|WEBHOOK_|BODY_LIMIT|SCREENSHOT_|LOG_LEVEL|NODE_OPTIONS)/;

export interface StartOptions {
  name: string;
  /** Script relative to the repository root (run with tsx when it ends in .ts), and its arguments. */
  script: string;
  args?: string[];
  env: Record<string, string>;
  ws: Workspace;
  port?: number;
  /** Path answering 200 once the process is ready (none for a worker). */
  readyPath?: string | null;
  nodeArgs?: string[];
}

export async function startProcess(o: StartOptions): Promise<HostProc> {
  const port = o.port ?? (await freePort());
  const logFile = path.join(o.ws.dir, `${o.name}.log`);
  const fd = openSync(logFile, 'a');
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !SCRUB.test(k)));
  const loader = o.script.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const proc = spawn(process.execPath, [...(o.nodeArgs ?? []), ...loader, o.script, ...(o.args ?? [])], {
    cwd: ROOT,
    env: { ...base, LOG_LEVEL: 'info', DATA_DIR: o.ws.dir, PORT: String(port), ...o.env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const url = `http://127.0.0.1:${port}`;
  const gone = () => proc.exitCode !== null || proc.signalCode !== null;
  const h: HostProc = {
    name: o.name,
    url,
    port,
    proc,
    pid: proc.pid!,
    logFile,
    exited,
    rss() {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
        return m ? Number(m[1]) * 1024 : 0;
      } catch {
        return 0;
      }
    },
    async stop(graceMs = 15_000) {
      if (gone()) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
    async kill() {
      if (gone()) return;
      proc.kill('SIGKILL');
      await exited;
    },
    log: () => readFileSync(logFile, 'utf8'),
  };
  o.ws.track(h);
  const readyPath = o.readyPath === undefined ? '/health/ready' : o.readyPath;
  if (readyPath) await waitReady(h, readyPath);
  return h;
}

async function waitReady(h: HostProc, readyPath: string, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let exitedWith: number | string | undefined;
  void h.exited.then((c) => (exitedWith = c));
  for (;;) {
    if (exitedWith !== undefined) throw new Error(`${h.name} exited (${exitedWith}) before it was ready:\n${h.log().slice(-4000)}`);
    try {
      const res = await request(`${h.url}${readyPath}`);
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`${h.name} not ready within ${timeoutMs} ms:\n${h.log().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The hosts run as built JavaScript under plain `node`, the way they are deployed: under tsx every stack
 * trace is source-mapped, and sequelize's SQLite driver reads `new Error().stack` on every query, which
 * cost a third of the devices host's CPU on SQLite. `buildHosts()` compiles the CLI and the seed baseline
 * with tsup into node_modules/.cache (so their dependencies resolve) once per bench run; RELAY_BENCH_BUILD_NAME
 * names another folder there, so that two checkouts sharing one node_modules do not build over each other.
 */
export const BUILD_DIR = path.join(ROOT, 'node_modules/.cache', process.env.RELAY_BENCH_BUILD_NAME ?? 'raqeem-relay-bench');
const CLI = path.join(BUILD_DIR, 'hosts/cli.js');
const SEED = path.join(BUILD_DIR, 'bench/baselines/seed-devices.js');

export function buildHosts(): void {
  execFileSync(
    process.execPath,
    [
      path.join(ROOT, 'node_modules/tsup/dist/cli-default.js'),
      'hosts/cli.ts',
      'bench/baselines/seed-devices.ts',
      '--no-config',
      '--format',
      'esm',
      '--target',
      'node20',
      '--out-dir',
      BUILD_DIR,
      '--silent',
    ],
    { cwd: ROOT, stdio: 'inherit' },
  );
}

export function startDevices(ws: Workspace, name: string, env: Record<string, string>, port?: number): Promise<HostProc> {
  return startProcess({ name, script: CLI, args: ['devices', '--host', '127.0.0.1'], env, ws, port });
}

export function startMentor(ws: Workspace, name: string, env: Record<string, string>, port?: number): Promise<HostProc> {
  return startProcess({ name, script: CLI, args: ['mentor', '--host', '127.0.0.1'], env, ws, port });
}

export function startWorker(ws: Workspace, name: string, env: Record<string, string>): Promise<HostProc> {
  return startProcess({ name, script: CLI, args: ['worker'], env, ws, readyPath: null });
}

export function startSeed(ws: Workspace, name: string, env: Record<string, string>, port?: number): Promise<HostProc> {
  return startProcess({ name, script: SEED, env, ws, port, readyPath: '/health' });
}

/** JSON request helper. */
export async function call<T = unknown>(
  method: 'GET' | 'POST' | 'DELETE',
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: T }> {
  const res = await request(url, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.body.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.statusCode, body: parsed as T };
}

/** Register `n` devices `bench-0` .. `bench-(n-1)`. */
export async function registerDevices(url: string, n: number, prefix = 'bench'): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
  for (const deviceid of ids) {
    const r = await call('POST', `${url}/api/v1/devices/register`, { deviceid, device_name: `Bench ${deviceid}`, os: 'linux' });
    if (r.status !== 200) throw new Error(`registering ${deviceid} answered ${r.status}: ${JSON.stringify(r.body)}`);
  }
  return ids;
}

/** Subscribe a webhook to `metric.*` (the host must allow private networks for a loopback receiver). */
export async function addWebhook(devicesUrl: string, token: string, url: string, events = ['metric.*']): Promise<string> {
  const r = await call<{ id: string }>(
    'POST',
    `${devicesUrl}/api/v1/webhooks`,
    { url, events, description: 'bench' },
    { authorization: `Bearer ${token}` },
  );
  if (r.status !== 201) throw new Error(`webhook registration answered ${r.status}: ${JSON.stringify(r.body)}`);
  return r.body.id;
}

/** Read-only access to a host's database, for counting the outbox and the mentor's rows. */
export class DbProbe {
  private readonly db: Database;
  constructor(url: string) {
    this.db = openDatabase(url, { pool: { max: 2, min: 0, idle: 1000, acquire: 30_000 } });
  }

  async query<T extends object>(sql: string): Promise<T[]> {
    return this.db.sequelize.query<T>(sql, { type: QueryTypes.SELECT });
  }

  /** Deliveries by status (all targets). */
  async deliveries(): Promise<Record<string, number>> {
    const rows = await this.query<{ status: string; n: unknown }>('SELECT status, COUNT(*) AS n FROM relay_deliveries GROUP BY status');
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }

  /**
   * No delivery is left unfinished (pending or in flight). Two probes of the partial indexes, not a count:
   * polled every 50 ms while a round drains, a `GROUP BY status` over the whole table took 15-18 ms of the
   * measured PostgreSQL's CPU each time (80 times a run: 1.2-1.5 s, about 10% of its CPU per record).
   */
  async drained(): Promise<boolean> {
    const rows = await this.query<{ n: unknown }>(
      "SELECT 1 AS n FROM (SELECT 1 FROM relay_deliveries WHERE status = 'pending' LIMIT 1) p UNION ALL SELECT 1 FROM (SELECT 1 FROM relay_deliveries WHERE status = 'inflight' LIMIT 1) i",
    ).catch(() => null);
    return rows !== null && rows.length === 0;
  }

  async count(table: string): Promise<number> {
    const [r] = await this.query<{ n: unknown }>(`SELECT COUNT(*) AS n FROM ${table}`);
    return Number(r?.n ?? 0);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

/** Poll until `fn` is true; throws after `timeoutMs`. */
export async function until(what: string, fn: () => Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await fn()) return Date.now() - start;
    if (Date.now() - start > timeoutMs) throw new Error(`${what}: not done within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
