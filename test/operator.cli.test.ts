/**
 * Issue 17, items 1, 5, 7 and 8 as an operator meets them on the command line (real child processes):
 * `--help` on every command, a port that says what a valid port is, `raqeem-relay secret` and the refusal of
 * weak secrets, the start-up line, and `migrate` refusing the other host's database untouched.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../lib/db.js';
import { verify, sign } from '../lib/signing.js';
import { mentorTarget } from '../plugins/mentor.js';
import { DIALECTS, createPgDatabase, createSqliteUrl } from './helpers/db.js';
import { HELP, USAGE } from '../hosts/cliHelp.js';
import { freePort, killAll, runCli, spawnCli } from './helpers/processes.js';
import { eventually } from './helpers/sink.js';

afterEach(async () => {
  await killAll();
});

const lines = (s: string) => s.trim().split('\n').filter(Boolean);
const COMMANDS = ['devices', 'mentor', 'worker', 'demo', 'simulate', 'reconcile', 'migrate', 'secret', 'rotate-key'];

describe('--help', () => {
  it('every command has its own usage, naming each of its flags', () => {
    expect(Object.keys(HELP).sort()).toEqual([...COMMANDS].sort());
    for (const command of COMMANDS) expect(HELP[command]!.startsWith(`Usage: raqeem-relay ${command}`), command).toBe(true);
    for (const flag of [
      '--host',
      '--devices-port',
      '--mentor-port',
      '--devices',
      '--rate',
      '--duration',
      '--url',
      '--since',
      '--types',
      '--bytes',
    ])
      expect(
        Object.values(HELP).some((h) => h.includes(flag)),
        flag,
      ).toBe(true);
    expect(USAGE).toContain('secret');
    expect(USAGE).toContain('Every command takes --help');
  });

  // Child processes run side by side: each costs a node start-up and a TypeScript load.
  it('`<command> --help` prints it and exits 0 without starting anything (devices would bind a port)', async () => {
    const results = await Promise.all([runCli(['devices', '--help']), runCli(['migrate', '-h'])]);
    expect(results.map((r) => r.code)).toEqual([0, 0]);
    expect(results[0]!.output.trim()).toBe(HELP.devices);
    expect(results[1]!.output.trim()).toBe(HELP.migrate);
  });
});

describe('ports', () => {
  it('demo --devices-port -1 (or 65536) says what a valid port is (exit 2, one line)', async () => {
    for (const { code, output } of await Promise.all(['-1', '65536'].map((v) => runCli(['demo', '--devices-port', v])))) {
      expect(code).toBe(2);
      expect(lines(output)).toHaveLength(1);
      expect(output).toContain('--devices-port must be a port number from 0 to 65535');
      expect(output).not.toContain('ambiguous');
    }
  });
});

describe('signing secrets', () => {
  it('`secret` prints a new whsec_ secret of 32 bytes that signs and verifies', async () => {
    const { code, output } = await runCli(['secret']);
    expect(code).toBe(0);
    const secret = output.trim();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(secret.slice('whsec_'.length), 'base64')).toHaveLength(32);
    const body = '{"a":1}';
    const headers = {
      'webhook-id': 'msg_1',
      'webhook-timestamp': '1700000000',
      'webhook-signature': sign({ id: 'msg_1', timestamp: 1700000000, body, secret }),
    };
    expect(verify(body, headers, secret, { now: 1700000000 })).toEqual({ id: 'msg_1', timestamp: 1700000000 });
    const [long, short] = await Promise.all([runCli(['secret', '--bytes', '48']), runCli(['secret', '--bytes', '8'])]);
    expect(long.output.trim().length).toBe('whsec_'.length + 64);
    expect(short.code).toBe(2);
  });

  it('the hosts and the worker refuse a short key ("mysecret") or a placeholder at start, naming the variable and `raqeem-relay secret`', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'relay-secret-'));
    const short = `whsec_${Buffer.from('mysecret').toString('base64')}`;
    const cases = [
      ['mentor', short, 'must be base64 of at least 24 random bytes (this one decodes to 8)'],
      ['worker', short, 'must be base64 of at least 24 random bytes (this one decodes to 8)'],
      ['devices', 'whsec_...', 'must be whsec_ followed by base64'],
    ] as const;
    try {
      // Side by side: each child costs a node start-up and a TypeScript load.
      const results = await Promise.all(
        cases.map(([command, secret]) =>
          runCli([command], { DATA_DIR: dir, MENTOR_SIGNING_SECRET: secret, PORT: '0', MENTOR_API_URL: 'http://127.0.0.1:9' }),
        ),
      );
      results.forEach(({ code, output }, i) => {
        const [command, secret, reason] = cases[i]!;
        expect(code, command).toBe(1);
        expect(lines(output), command).toHaveLength(1);
        expect(output).toContain(`MENTOR_SIGNING_SECRET ${reason}`);
        expect(output).toContain('npx raqeem-relay secret');
        expect(output).not.toContain(secret);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the library refuses a short signing secret when the target is built', () => {
    expect(() => mentorTarget({ url: 'http://127.0.0.1:9', signingSecret: `whsec_${Buffer.alloc(16).toString('base64')}` })).toThrow(
      'target mentor: signingSecret must be base64 of at least 24 random bytes (this one decodes to 16); create one with `npx raqeem-relay secret` or generateSecret()',
    );
    expect(() =>
      mentorTarget({ url: 'http://127.0.0.1:9', signingSecret: `whsec_${Buffer.alloc(24, 1).toString('base64')}` }),
    ).not.toThrow();
  });
});

describe('the start-up line', () => {
  it('shows the real bind address, the targets and every FORWARD_* toggle that is off', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'relay-startup-'));
    try {
      const port = await freePort();
      const p = spawnCli(['devices'], {
        DATA_DIR: dir,
        PORT: String(port),
        LOG_LEVEL: 'info',
        MENTOR_API_URL: 'http://127.0.0.1:9',
        FORWARD_METRICS: 'false',
        FORWARD_ALERTS: 'false',
      });
      const line = await eventually(() =>
        lines(p.output())
          .filter((l) => l.startsWith('{'))
          .map((l) => JSON.parse(l) as Record<string, unknown>)
          .find((l) => String(l.msg).startsWith('devices host listening')),
      );
      expect(line).toMatchObject({
        url: `http://0.0.0.0:${port}`,
        targets: ['mentor', 'webhooks'],
        togglesOff: ['FORWARD_METRICS', 'FORWARD_ALERTS'],
      });
      expect(line.msg).toBe(
        `devices host listening on http://0.0.0.0:${port}; targets: mentor, webhooks; off: FORWARD_METRICS, FORWARD_ALERTS`,
      );
    } finally {
      await killAll();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(DIALECTS)('migrate on one database (%s)', (dialect) => {
  it('`migrate devices` then `migrate mentor` is refused before anything is changed, saying each host needs its own database', async () => {
    const database = dialect === 'postgres' ? await createPgDatabase('cli_onedb') : createSqliteUrl();
    const tables = async () => {
      const db = openDatabase(database.url);
      try {
        return (await db.sequelize.getQueryInterface().showAllTables()).map(String).sort();
      } finally {
        await db.close();
      }
    };
    try {
      expect((await runCli(['migrate', 'devices'], { DATABASE_URL: database.url })).code).toBe(0);
      const before = await tables();
      expect(before).toContain('devices_migrations');
      const { code, output } = await runCli(['migrate', 'mentor'], { DATABASE_URL: database.url });
      expect(code).toBe(1);
      expect(lines(output)).toHaveLength(1);
      expect(output).toContain("DATABASE_URL holds the devices host's tables; each host needs its own database");
      expect(await tables()).toEqual(before);
      expect(before).not.toContain('mentor_migrations');
      // Starting the mentor host on it is refused the same way.
      const back = await runCli(['mentor'], { DATABASE_URL: database.url, PORT: '0' });
      expect(back.code).toBe(1);
      expect(await tables()).toEqual(before);
    } finally {
      await database.drop();
    }
  });
});
