/**
 * The examples run against the PUBLISHED package, so they and the tarball can never drift apart:
 * `npm pack` (its prepack builds with tsup) into a temporary directory, the tarball extracted into a
 * fresh project's `node_modules/raqeem-relay`, every runtime dependency the package declares linked from
 * this repository's node_modules (offline: npm fetches and builds nothing), the examples copied beside it,
 * type-checked against the packed `.d.ts` files, and each run as a child process (tsx) against real
 * receivers on loopback: a recording HTTP server, and a real mentor host for the mentor preset.
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { generateSecret } from '../lib/signing.js';
import { createPgDatabase, createSqliteUrl, DIALECTS } from './helpers/db.js';
import type { TestDialect } from './helpers/db.js';
import { startMentorFixture } from './helpers/mentor.js';
import { REPO_ROOT as ROOT } from './helpers/processes.js';

const run = promisify(execFile);
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; dependencies: Record<string, string> };
const TSX = path.join(ROOT, 'node_modules/tsx/dist/cli.mjs');
/**
 * Linked for the type check only. `@types/express`: the main entry's declarations name Express types
 * (managementRouter, problemHandler), so a TypeScript user without skipLibCheck needs it (docs/library.md).
 */
const TYPECHECK_DEPS = ['typescript', '@types/node', '@types/pg', '@types/express'];
const EXAMPLES = readdirSync(path.join(ROOT, 'examples')).filter((f) => f.endsWith('.ts'));

/** The parent's environment without anything that would configure an example or a relay. */
const baseEnv = Object.fromEntries(
  Object.entries(process.env).filter(([k]) => !/^(DATABASE_URL|RECEIVER_URL|SIGNING_SECRET|SLACK_|MENTOR_|VITEST|NODE_OPTIONS)/.test(k)),
);

interface Received {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A receiver on loopback that records every request. `/slack` answers as a Slack incoming webhook does. */
async function startReceiver(): Promise<{ url: string; requests: Received[]; server: Server }> {
  const requests: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      requests.push({ path: req.url ?? '', headers: req.headers, body });
      if (req.url === '/slack' && !['#ops', '#deploys'].includes((JSON.parse(body) as { channel: string }).channel)) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('channel_not_found');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, requests, server };
}

interface Child {
  child: ChildProcess;
  output(): string;
  exited: Promise<number | string>;
}

const children = new Set<ChildProcess>();

describe('examples, run from the packed tarball', () => {
  let dir: string;
  let project: string;
  let tarballFiles: string[];
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let typeCheck: Promise<string>;
  const cleanup: Array<() => Promise<void>> = [];

  /** Run `examples/<file>` in the project under tsx, as a user would (`npx tsx file.ts`). */
  function example(file: string, args: string[], env: Record<string, string>): Child {
    const child = spawn(process.execPath, [TSX, file, ...args], { cwd: project, env: { ...baseEnv, ...env }, stdio: 'pipe' });
    children.add(child);
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString('utf8')));
    const exited = new Promise<number | string>((resolve) =>
      child.once('exit', (code, signal) => {
        children.delete(child);
        resolve(code ?? signal ?? 'unknown');
      }),
    );
    return { child, output: () => out, exited };
  }

  async function runToEnd(file: string, env: Record<string, string>, args: string[] = []): Promise<string> {
    const c = example(file, args, env);
    const code = await c.exited;
    expect(code, `${file} exited with ${code}:\n${c.output()}`).toBe(0);
    return c.output();
  }

  async function until(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!check()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  async function database(dialect: TestDialect): Promise<string> {
    const target = dialect === 'postgres' ? await createPgDatabase('examples') : createSqliteUrl();
    cleanup.push(() => target.drop());
    return target.url;
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'relay-examples-'));
    // prepack runs `npm run build` (tsup) into dist/, which is gitignored. Offline: packing fetches nothing.
    await run('npm', ['pack', '--pack-destination', dir, '--silent'], {
      cwd: ROOT,
      env: {
        ...baseEnv,
        npm_config_offline: 'true',
        npm_config_audit: 'false',
        npm_config_fund: 'false',
        npm_config_update_notifier: 'false',
      },
      maxBuffer: 16 * 1024 * 1024,
    });
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    if (!tarball) throw new Error(`npm pack left no tarball in ${dir}`);
    tarballFiles = (await run('tar', ['-tzf', path.join(dir, tarball)])).stdout.trim().split('\n');

    project = path.join(dir, 'project');
    const installed = path.join(project, 'node_modules', pkg.name);
    mkdirSync(installed, { recursive: true });
    await run('tar', ['-xzf', path.join(dir, tarball), '-C', installed, '--strip-components=1']);
    for (const dep of [...Object.keys(pkg.dependencies), ...TYPECHECK_DEPS]) {
      const link = path.join(project, 'node_modules', dep);
      mkdirSync(path.dirname(link), { recursive: true });
      if (!existsSync(link)) symlinkSync(path.join(ROOT, 'node_modules', dep), link);
    }
    for (const f of EXAMPLES) cpSync(path.join(ROOT, 'examples', f), path.join(project, f));
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'example-app', private: true, type: 'module' }));
    writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: true,
          types: ['node'],
        },
        include: ['*.ts'],
      }),
    );
    receiver = await startReceiver();
    // The type check runs beside the example runs (they mostly wait on I/O); the last test awaits it.
    const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
    typeCheck = run(process.execPath, [tsc, '-p', project]).then(
      () => '',
      (e: { stdout: string; stderr: string }) => `${e.stdout}${e.stderr}`,
    );
    // Packing builds with tsup (declarations included): about 20 s on a quiet 2-core machine, minutes under load.
  }, 300_000);

  afterEach(async () => {
    for (const c of children) c.kill('SIGKILL');
    for (const c of cleanup.splice(0).reverse()) await c().catch(() => undefined);
    if (receiver) receiver.requests.length = 0;
  });

  afterAll(async () => {
    await new Promise((resolve) => receiver?.server.close(resolve));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('installs the packed build: raqeem-relay resolves to the extracted tarball, which holds dist and docs, not sources', async () => {
    const resolved = (await run(process.execPath, ['-p', `require.resolve(${JSON.stringify(pkg.name)})`], { cwd: project })).stdout.trim();
    expect(realpathSync(resolved)).toBe(realpathSync(path.join(project, 'node_modules', pkg.name, 'dist', 'index.cjs')));
    // What the examples load (ESM, as tsx runs them): every subpath they import, from the extracted tarball.
    const specs = [pkg.name, `${pkg.name}/plugins/http`, `${pkg.name}/plugins/mentor`];
    const esm = (
      await run(
        process.execPath,
        ['--input-type=module', '-e', `for (const s of ${JSON.stringify(specs)}) console.log(import.meta.resolve(s))`],
        {
          cwd: project,
        },
      )
    ).stdout
      .trim()
      .split('\n');
    const dist = pathToFileURL(path.join(realpathSync(project), 'node_modules', pkg.name, 'dist')).href;
    expect(esm).toEqual([`${dist}/index.js`, `${dist}/plugins/http.js`, `${dist}/plugins/mentor.js`]);
    expect(tarballFiles).toContain('package/dist/index.js');
    expect(tarballFiles).toContain('package/docs/library.md');
    expect(tarballFiles.filter((f) => /^package\/(lib|plugins|hosts|examples|test)\//.test(f))).toEqual([]);
    expect(EXAMPLES.length).toBeGreaterThanOrEqual(5);
  });

  it('first-relay: the committed order is delivered once, signed; the rolled-back one sends nothing', async () => {
    const secret = generateSecret();
    const out = await runToEnd('first-relay.ts', {
      DATABASE_URL: await database('sqlite'),
      RECEIVER_URL: receiver.url,
      SIGNING_SECRET: secret,
    });
    expect(out).toContain('not placed: payment declined');
    expect(out).toMatch(/delivered order\.created evt_\w+ to shipping \(HTTP 200\)/);
    expect(receiver.requests.map((r) => r.path)).toEqual(['/orders']);
    const [req] = receiver.requests;
    expect(JSON.parse(req!.body)).toMatchObject({ total: 4200 });
    // Verified with the standardwebhooks package, not our own verify().
    expect(new Webhook(secret).verify(req!.body, req!.headers as Record<string, string>)).toMatchObject({ total: 4200 });
    expect(req!.headers['idempotency-key']).toBe(req!.headers['webhook-id']);
  }, 120_000);

  it.each(DIALECTS)(
    'own-transaction on %s: sequelize, plain SQL and group commit each deliver their invoices',
    async (dialect) => {
      const out = await runToEnd('own-transaction.ts', { DATABASE_URL: await database(dialect), RECEIVER_URL: receiver.url });
      expect(out).toContain('delivered: 5 invoices');
      if (dialect === 'postgres') expect(out).toContain('pg.Pool reads the committed invoice of globex');
      const customers = receiver.requests.map((r) => (JSON.parse(r.body) as { customer: string }).customer);
      expect(customers.sort()).toEqual(['acme', 'globex', 'hooli', 'initech', 'umbrella']);
      expect(new Set(receiver.requests.map((r) => r.path))).toEqual(new Set(['/invoices']));
    },
    60_000,
  );

  it('custom-target: the chat plugin delivers, a refused channel dies, and is recovered after the fix', async () => {
    const out = await runToEnd('custom-target.ts', { DATABASE_URL: await database('sqlite'), SLACK_WEBHOOK_URL: `${receiver.url}/slack` });
    const channels = receiver.requests.map((r) => (JSON.parse(r.body) as { channel: string }).channel);
    expect(channels.sort()).toEqual(['#deploy', '#deploys', '#ops']);
    expect(out).toMatch(/dead: deploy\.finished \(HTTP 404\)/);
    expect(out).toMatch(/attempt 1: 404 channel_not_found/);
    expect(out).toContain('re-queued 1 dead deliveries');
    expect(out).toContain('deploy.finished: succeeded after 2 attempts');
    expect(out).toContain('alert.raised: succeeded after 1 attempts');
  }, 120_000);

  it('worker: events published by other processes are delivered by a worker on PostgreSQL, which stops gracefully on SIGTERM', async () => {
    const env = { DATABASE_URL: await database('postgres'), RECEIVER_URL: receiver.url };
    const countOrders = () => receiver.requests.reduce((n, r) => n + [JSON.parse(r.body) as unknown].flat().length, 0);
    const worker = example('worker.ts', ['work'], env);
    await until('the worker to start', () => worker.output().includes('worker started'));
    expect(await runToEnd('worker.ts', env, ['publish', '3'])).toContain('published 3 events');
    expect(await runToEnd('worker.ts', env, ['publish', '2'])).toContain('published 2 events');
    await until('the worker to deliver five orders', () => countOrders() >= 5);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
    expect(worker.output()).toContain('worker stopped');
    // A backlog travels batched: a body is one order or an array of them.
    const orders = receiver.requests
      .flatMap((r) => [JSON.parse(r.body) as { order: string } | Array<{ order: string }>].flat())
      .map((o) => o.order);
    expect(orders.sort()).toEqual(['ord_0', 'ord_0', 'ord_1', 'ord_1', 'ord_2']);
    expect(receiver.requests.every((r) => r.path === '/orders/paid' && r.headers.authorization === 'Bearer dev-token')).toBe(true);
  }, 120_000);

  it('mentor (the README example): a real mentor host stores the forwarded device and metric', async () => {
    const mentor = await startMentorFixture('sqlite', { MENTOR_SIGNING_SECRET: generateSecret() });
    cleanup.push(() => mentor.close());
    const out = await runToEnd('mentor.ts', {
      DATABASE_URL: await database('sqlite'),
      MENTOR_API_URL: mentor.url,
      MENTOR_SIGNING_SECRET: mentor.secret!,
    });
    const metricid = /metric (\S+) to the mentor/.exec(out)?.[1];
    expect(metricid, out).toBeDefined();
    expect((await mentor.get('/devices/d1')).body).toMatchObject({ deviceid: 'd1', device_name: 'Test Device' });
    expect((await mentor.get('/devices/d1/metrics')).body).toEqual([
      expect.objectContaining({ metricid, deviceid: 'd1', cpu_usage: 42.5 }),
    ]);
  }, 120_000);

  it('every example type-checks against the packed declarations', async () => {
    expect(await typeCheck).toBe('');
  }, 120_000);
});
