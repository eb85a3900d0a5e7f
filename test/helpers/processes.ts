/**
 * The real CLI as child processes (`node --import tsx hosts/cli.ts ...`) for end-to-end tests. A child's
 * `PORT=0` port cannot be read back, so ports are picked first by binding port 0 and releasing it. Every
 * child is tracked, and `killAll()` (call it in afterEach) SIGKILLs whatever a test left running; an exit
 * hook does the same if the test process dies first.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CLI = path.join(REPO_ROOT, 'hosts/cli.ts');
const OUTPUT_LIMIT = 64 * 1024;

const living = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of living) child.kill('SIGKILL');
});

/**
 * A loopback port that is free now and will not be handed out again by this process. Ports come from
 * below the kernel's ephemeral range (32768+), so no bind(0) or outgoing connection elsewhere can take
 * one between our check and the child's bind, and each vitest worker draws from its own slice.
 */
const given = new Set<number>();
export async function freePort(): Promise<number> {
  const worker = Number(process.env.VITEST_POOL_ID ?? process.env.VITEST_WORKER_ID ?? 0) % 8;
  const base = 12_000 + worker * 2_500;
  for (let tries = 0; tries < 200; tries++) {
    const port = base + Math.floor(Math.random() * 2_500);
    if (given.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) {
      given.add(port);
      return port;
    }
  }
  throw new Error('no free loopback port found');
}

/** Variables of the test process that must not leak into a child's configuration. */
const SCRUB =
  /^(PORT|HOST|DATABASE_URL|DATA_DIR|MENTOR_|DEVICES_API_URL|FORWARD_|RELAY_|WEBHOOK_|BODY_LIMIT|SCREENSHOT_|LOG_LEVEL|VITEST|NODE_OPTIONS)/;

export interface CliProcess {
  child: ChildProcess;
  /** stdout and stderr so far (the last 64 KiB). */
  output(): string;
  /** Resolves with the exit code (or the signal name) when the child exits. */
  exited: Promise<number | string>;
}

export function spawnCli(args: string[], env: Record<string, string> = {}): CliProcess {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !SCRUB.test(k)));
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], {
    cwd: REPO_ROOT,
    env: { ...base, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  living.add(child);
  let out = '';
  const append = (chunk: Buffer) => {
    out = (out + chunk.toString('utf8')).slice(-OUTPUT_LIMIT);
  };
  child.stdout!.on('data', append);
  child.stderr!.on('data', append);
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      living.delete(child);
      resolve(code ?? signal ?? 'unknown');
    });
  });
  return { child, output: () => out, exited };
}

/** Run a CLI command to completion. */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
  timeoutMs = 60_000,
): Promise<{ code: number | string; output: string }> {
  const p = spawnCli(args, env);
  const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
  const code = await p.exited;
  clearTimeout(timer);
  return { code, output: p.output() };
}

export interface HostProcess extends CliProcess {
  kind: 'devices' | 'mentor';
  port: number;
  url: string;
  /** SIGTERM and wait for the exit (SIGKILL after `timeoutMs`); resolves with the exit code. */
  stop(timeoutMs?: number): Promise<number | string>;
  /** SIGKILL, as a crash would. */
  kill(): Promise<number | string>;
}

/** Poll `/health/ready` until it answers 200; fail at once if the child exits. */
export async function waitReady(p: CliProcess, url: string, timeoutMs = 45_000, service?: string): Promise<void> {
  const until = Date.now() + timeoutMs;
  let exitedWith: number | string | undefined;
  void p.exited.then((c) => (exitedWith = c));
  for (;;) {
    if (exitedWith !== undefined) throw new Error(`${url}: the process exited (${exitedWith}) before it was ready:\n${p.output()}`);
    try {
      const res = await fetch(`${url}/health/ready`);
      // Make sure it is our child answering, not another host that got the port.
      const health = res.status === 200 ? ((await (await fetch(`${url}/health`)).json()) as { service?: string }) : null;
      if (health && (service === undefined || health.service === service)) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) throw new Error(`${url} was not ready within ${timeoutMs} ms:\n${p.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Start `raqeem-relay devices|mentor` on a chosen (or picked) loopback port and wait until it is ready. */
export async function startHost(kind: 'devices' | 'mentor', env: Record<string, string>, port?: number): Promise<HostProcess> {
  const chosen = port ?? (await freePort());
  const p = spawnCli([kind, '--host', '127.0.0.1'], { ...env, PORT: String(chosen) });
  const url = `http://127.0.0.1:${chosen}`;
  const signal = async (sig: NodeJS.Signals, timeoutMs: number) => {
    if (p.child.exitCode !== null || p.child.signalCode !== null) return p.exited;
    p.child.kill(sig);
    const timer = setTimeout(() => p.child.kill('SIGKILL'), timeoutMs);
    const code = await p.exited;
    clearTimeout(timer);
    return code;
  };
  try {
    await waitReady(p, url, 45_000, kind);
  } catch (err) {
    p.child.kill('SIGKILL');
    await p.exited;
    throw err;
  }
  return { ...p, kind, port: chosen, url, stop: (timeoutMs = 20_000) => signal('SIGTERM', timeoutMs), kill: () => signal('SIGKILL', 0) };
}

/** SIGKILL every child still running (afterEach). */
export async function killAll(): Promise<void> {
  const waits: Array<Promise<void>> = [];
  for (const child of living) {
    waits.push(
      new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve()))),
    );
    child.kill('SIGKILL');
  }
  await Promise.all(waits);
}

/** How many CLI children are running (afterEach can assert none leaked). */
export const runningCount = (): number => living.size;
