/** The command line as a user runs it: configuration errors, migrate, graceful shutdown, and the demo. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { DIALECTS, createPgDatabase, createSqliteUrl } from './helpers/db.js';
import type { TestDialect } from './helpers/db.js';
import { http, startPair } from './helpers/e2e.js';
import type { Pair } from './helpers/e2e.js';
import { freePort, killAll, runCli, spawnCli, waitReady } from './helpers/processes.js';
import { eventually } from './helpers/sink.js';

afterEach(async () => {
  await killAll();
});

const lines = (s: string) => s.trim().split('\n').filter(Boolean);

describe('command line errors', () => {
  it.each([
    [['devices'], { FORWARD_TIMEOUT: 'abc' }, 'FORWARD_TIMEOUT'],
    [['mentor'], { PORT: '99999' }, 'PORT'],
    [['devices'], { FORWARD_METRICS: 'maybe' }, 'FORWARD_METRICS'],
    [['mentor'], { MENTOR_SIGNING_SECRET: 'not-a-secret!' }, 'MENTOR_SIGNING_SECRET'],
    [['worker'], { FORWARD_BACKOFF_BASE: '-1' }, 'FORWARD_BACKOFF_BASE'],
    [['reconcile', '--since', '2025-01-01T00:00:00Z'], {}, 'MENTOR_API_URL'],
    [['migrate', 'devices'], { DATABASE_URL: 'mysql://nope' }, 'DATABASE_URL'],
    [['devices'], { RELAY_HEAP_GROWING_PERCENT: 'abc' }, 'RELAY_HEAP_GROWING_PERCENT'],
    [['devices'], { RELAY_DISPATCH: 'maybe' }, 'RELAY_DISPATCH'],
  ])('%j with %j exits 1 with one line naming %s', async (args, env, variable) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'relay-cli-'));
    try {
      const { code, output } = await runCli(args, { DATA_DIR: dir, ...env });
      expect(code).toBe(1);
      expect(lines(output)).toHaveLength(1);
      expect(output).toContain(variable);
      expect(output).not.toContain('not-a-secret!');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([[['bogus']], [['reconcile']], [['reconcile', '--since', 'last tuesday']], [['devices', '--nope']], [['migrate', 'both']]])(
    '%j is a usage error (exit 2, one line)',
    async (args) => {
      const { code, output } = await runCli(args);
      expect(code).toBe(2);
      expect(lines(output)).toHaveLength(1);
    },
  );

  it('prints usage for --help', async () => {
    const { code, output } = await runCli(['--help']);
    expect(code).toBe(0);
    for (const c of ['devices', 'mentor', 'worker', 'demo', 'simulate', 'reconcile', 'migrate']) expect(output).toContain(c);
  });
});

async function database(dialect: TestDialect) {
  return dialect === 'postgres' ? createPgDatabase('cli_migrate') : createSqliteUrl();
}

describe.each(DIALECTS)('command line on %s', (dialect) => {
  let pair: Pair | undefined;
  afterEach(async () => {
    await pair?.close();
    pair = undefined;
  });

  it('migrate applies each host’s migrations once, then reports them up to date', async () => {
    const [devicesDb, mentorDb] = [await database(dialect), await database(dialect)];
    try {
      for (const [service, url, marker] of [
        ['devices', devicesDb.url, 'devices:'],
        ['mentor', mentorDb.url, 'mentor:'],
      ] as const) {
        const first = await runCli(['migrate', service], { DATABASE_URL: url });
        expect(first.code).toBe(0);
        expect(first.output).toMatch(new RegExp(`${marker} applied \\S+`));
        const again = await runCli(['migrate', service], { DATABASE_URL: url });
        expect(again.code).toBe(0);
        expect(again.output).toContain(`${marker} up to date`);
      }
    } finally {
      await devicesDb.drop();
      await mentorDb.drop();
    }
  });

  it('simulate drives fake devices through the devices host to the mentor', async () => {
    pair = await startPair(dialect);
    const p = pair;
    const run = await runCli(['simulate', '--devices', '3', '--rate', '20', '--duration', '2', '--url', p.devicesUrl]);
    expect(run.code).toBe(0);
    expect(run.output).toMatch(/simulated 3 devices against/);
    expect(run.output).toMatch(/\d+ ok, 0 failed/);
    const sims = await eventually(async () => {
      const rows = (await http('GET', `${p.mentorUrl}/devices`)).body as Array<{ deviceid: string }>;
      return rows.filter((d) => d.deviceid.startsWith('sim-')).length === 3 ? rows : null;
    });
    expect(sims).toHaveLength(3);
  });

  it('both hosts stop with exit code 0 on SIGTERM', async () => {
    pair = await startPair(dialect);
    await http('POST', `${pair.devicesUrl}/api/v1/devices/register`, { deviceid: 'bye' });
    expect(await pair.devices.stop()).toBe(0);
    expect(await pair.mentor!.stop()).toBe(0);
  });
});

describe('demo (npm start)', () => {
  it('runs both hosts on SQLite under DATA_DIR, wired and signed, and prints the admin token but not the secret', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'relay-demo-'));
    const [devicesPort, mentorPort] = [await freePort(), await freePort()];
    const demo = spawnCli(['demo', '--devices-port', String(devicesPort), '--mentor-port', String(mentorPort)], {
      DATA_DIR: dir,
      // The demo ignores these: each host gets its own SQLite file and the generated secret.
      DATABASE_URL: 'postgres://should-not-be-used/db',
      MENTOR_SIGNING_SECRET: 'whsec_c2hvdWxkLW5vdC1iZS11c2VkLWF0LWFsbC0xMjM0NTY3OA==',
    });
    try {
      const devicesUrl = `http://127.0.0.1:${devicesPort}`;
      const mentorUrl = `http://127.0.0.1:${mentorPort}`;
      await waitReady(demo, devicesUrl);
      await waitReady(demo, mentorUrl);
      await eventually(() => demo.output().includes('admin token'));
      const token = /admin token\s+(\S+)/.exec(demo.output())![1]!;
      expect(demo.output()).not.toContain('whsec_');
      expect(demo.output()).toContain(`curl -X POST http://localhost:${devicesPort}/api/v1/devices/register`);

      const reg = await http('POST', `${devicesUrl}/api/v1/devices/register`, { deviceid: 'test-device-123', device_name: 'Test Device' });
      expect(reg.status).toBe(200);
      const central = await eventually(async () => {
        const r = await http('GET', `${mentorUrl}/devices/test-device-123`);
        return r.status === 200 ? r.body : null;
      });
      expect(central).toMatchObject({ deviceid: 'test-device-123', device_name: 'Test Device' });
      const log = await http('GET', `${devicesUrl}/api/v1/deliveries`, undefined, { authorization: `Bearer ${token}` });
      expect(log.status).toBe(200);
      expect((await http('GET', `${devicesUrl}/api/v1/deliveries`, undefined, { authorization: 'Bearer wrong' })).status).toBe(401);
      const doc = (await http('GET', `${devicesUrl}/openapi.json`)).body as { paths: Record<string, unknown> };
      for (const p of ['/api/v1/devices/register', '/api/v1/webhooks', '/api/v1/deliveries', '/api/v1/reconcile'])
        expect(doc.paths[p]).toBeDefined();

      demo.child.kill('SIGTERM');
      expect(await demo.exited).toBe(0);
    } finally {
      demo.child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
