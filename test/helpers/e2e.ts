/**
 * End-to-end fixture: a devices host and a mentor host as real CLI processes on loopback, each with its own
 * database (SQLite files in a temp DATA_DIR, or two fresh PostgreSQL databases), wired to each other and
 * signing with a shared MENTOR_SIGNING_SECRET. Ports are reserved up front so either side can start late.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateSecret } from '../../lib/signing.js';
import { createPgDatabase } from './db.js';
import type { TestDialect } from './db.js';
import { freePort, startHost } from './processes.js';
import type { HostProcess } from './processes.js';

export interface PairOptions {
  /** Extra env for the devices host; `MENTOR_API_URL: ''` runs it standalone. */
  devicesEnv?: Record<string, string>;
  mentorEnv?: Record<string, string>;
  /** Start the mentor now (default) or later with `startMentor()`. */
  startMentor?: boolean;
}

export interface Pair {
  devices: HostProcess;
  mentor: HostProcess | undefined;
  devicesUrl: string;
  mentorUrl: string;
  adminToken: string;
  secret: string;
  /** The environment each host was started with (for running other CLI commands on the same databases). */
  devicesEnv: Record<string, string>;
  mentorEnv: Record<string, string>;
  startMentor(): Promise<HostProcess>;
  close(): Promise<void>;
}

async function databases(dialect: TestDialect, dataDir: string) {
  if (dialect === 'sqlite') {
    return {
      devices: `sqlite:${path.join(dataDir, 'devices.sqlite')}`,
      mentor: `sqlite:${path.join(dataDir, 'mentor.sqlite')}`,
      drop: async () => undefined,
    };
  }
  const devices = await createPgDatabase('e2e_devices');
  const mentor = await createPgDatabase('e2e_mentor').catch(async (err: unknown) => {
    await devices.drop();
    throw err;
  });
  return { devices: devices.url, mentor: mentor.url, drop: async () => void (await Promise.all([devices.drop(), mentor.drop()])) };
}

export async function startPair(dialect: TestDialect, o: PairOptions = {}): Promise<Pair> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'relay-e2e-'));
  const dbs = await databases(dialect, dataDir);
  const [devicesPort, mentorPort] = [await freePort(), await freePort()];
  const devicesUrl = `http://127.0.0.1:${devicesPort}`;
  const mentorUrl = `http://127.0.0.1:${mentorPort}`;
  const secret = generateSecret();
  const adminToken = randomBytes(18).toString('base64url');
  const common = { DATA_DIR: dataDir, MENTOR_SIGNING_SECRET: secret, FORWARD_BACKOFF_BASE: '0.05' };
  const mentorEnv: Record<string, string> = { ...common, DATABASE_URL: dbs.mentor, DEVICES_API_URL: devicesUrl, ...o.mentorEnv };
  const devicesEnv: Record<string, string> = {
    ...common,
    DATABASE_URL: dbs.devices,
    MENTOR_API_URL: mentorUrl,
    RELAY_ADMIN_TOKEN: adminToken,
    ...o.devicesEnv,
  };

  const started: HostProcess[] = [];
  const cleanup = async () => {
    await Promise.all(started.map((p) => p.stop()));
    await dbs.drop();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const wantMentor = o.startMentor ?? true;
    const [devices, mentor] = await Promise.all([
      startHost('devices', devicesEnv, devicesPort).then((p) => (started.push(p), p)),
      wantMentor ? startHost('mentor', mentorEnv, mentorPort).then((p) => (started.push(p), p)) : Promise.resolve(undefined),
    ]);
    const pair: Pair = {
      devices,
      mentor,
      devicesUrl,
      mentorUrl,
      adminToken,
      secret,
      devicesEnv,
      mentorEnv,
      async startMentor() {
        if (pair.mentor) return pair.mentor;
        pair.mentor = await startHost('mentor', mentorEnv, mentorPort);
        started.push(pair.mentor);
        return pair.mentor;
      },
      close: cleanup,
    };
    return pair;
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** JSON over fetch, for readable assertions. */
export async function http(
  method: 'GET' | 'POST',
  url: string,
  body?: unknown,
  headers: Record<string, string> = {},
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read arbitrary JSON
): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body: parsed };
}
