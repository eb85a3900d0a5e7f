/**
 * Child processes for the benchmarks: every server under test runs as a real process on loopback, started
 * with `node --import tsx`, so its CPU and memory are its own and a SIGKILL is a real crash.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';

import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface Child {
  proc: ChildProcess;
  pid: number;
  /** Everything written to stderr and stdout so far (capped), for error messages. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

export interface SpawnOptions {
  env?: Record<string, string | undefined>;
  /** Resolve once a stdout line parses as JSON with this key (the child's "ready" line). */
  readyKey?: string;
  timeoutMs?: number;
  /** Node flags (for example `--max-old-space-size`). */
  nodeArgs?: string[];
}

/** Spawn `node --import tsx <script> ...args` from the repository root. */
export async function spawnTs(
  script: string,
  args: string[] = [],
  o: SpawnOptions = {},
): Promise<{ child: Child; ready: Record<string, unknown> | null }> {
  const proc = spawn(process.execPath, [...(o.nodeArgs ?? []), '--import', 'tsx', script, ...args], {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', ...o.env } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (s: string) => {
    out = (out + s).slice(-20_000);
  };
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const child: Child = {
    proc,
    pid: proc.pid!,
    output: () => out,
    exited,
    async stop(graceMs = 5000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
    async kill() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGKILL');
      await exited;
    },
  };
  proc.stderr!.setEncoding('utf8').on('data', keep);
  if (!o.readyKey) {
    proc.stdout!.setEncoding('utf8').on('data', keep);
    return { child, ready: null };
  }
  const key = o.readyKey;
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(
      () => reject(new Error(`${script} did not become ready in ${o.timeoutMs ?? 30_000} ms:\n${out}`)),
      o.timeoutMs ?? 30_000,
    );
    proc.stdout!.setEncoding('utf8').on('data', (s: string) => {
      keep(s);
      buf += s;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const j = JSON.parse(line) as Record<string, unknown>;
          if (key in j) {
            clearTimeout(timer);
            resolve(j);
          }
        } catch {
          // not a JSON line
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited with ${code} before it was ready:\n${out}`));
    });
  });
  return { child, ready };
}

/** Poll `url` until it answers 2xx. */
export async function waitForHttp(url: string, timeoutMs = 30_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.ok) return;
      last = new Error(`HTTP ${res.status}`);
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms: ${String(last)}`);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
