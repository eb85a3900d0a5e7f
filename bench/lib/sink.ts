/** The sink process seen from the harness: start it, read its counters, switch its mode. */
import { request } from 'undici';
import { spawnTs } from './processes.js';
import type { Child } from './processes.js';
import type { SinkMode, SinkStats } from './sink-server.js';

export interface SinkHandle {
  url: string;
  port: number;
  child: Child;
  stats(): Promise<SinkStats>;
  markers(): Promise<number[]>;
  reset(): Promise<void>;
  mode(m: SinkMode): Promise<void>;
  /** Resolves when the sink has counted at least `records` records. */
  waitForRecords(records: number, timeoutMs: number): Promise<SinkStats>;
  close(): Promise<void>;
}

async function call<T>(url: string, method: 'GET' | 'POST' = 'GET'): Promise<T> {
  const res = await request(url, { method });
  return (await res.body.json()) as T;
}

export async function startSinkProcess(port = 0): Promise<SinkHandle> {
  const { child, ready } = await spawnTs('bench/lib/sink-server.ts', [], { readyKey: 'port', env: { PORT: String(port) } });
  const p = Number(ready!.port);
  const url = `http://127.0.0.1:${p}`;
  const handle: SinkHandle = {
    url,
    port: p,
    child,
    stats: () => call<SinkStats>(`${url}/__stats`),
    markers: () => call<number[]>(`${url}/__markers`),
    reset: async () => void (await call(`${url}/__reset`, 'POST')),
    mode: async (m) => void (await call(`${url}/__mode/${m}`, 'POST')),
    async waitForRecords(records, timeoutMs) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const s = await handle.stats();
        if (s.records >= records) return s;
        if (Date.now() > until) throw new Error(`sink has ${s.records} of ${records} records after ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () => child.stop(1000),
  };
  return handle;
}
