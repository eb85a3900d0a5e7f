/**
 * Shared by the fault suites: a numbered stream of metrics that remembers exactly which records a devices
 * host acknowledged with 200, and read access to a host's database to check what arrived. The marker of a
 * record is its `memory_total` (an ordinary metrics field the devices host stores and forwards as is).
 */
import { QueryTypes } from 'sequelize';
import { Agent, request } from 'undici';
import { openDatabase } from '../../lib/db.js';
import type { Database } from '../../lib/db.js';

export interface StreamOptions {
  /** Base URL of a devices host, read before every request (a host may move after a restart). */
  url: () => string;
  devices: string[];
  /** Records to send (each gets its own marker, `markerStart + i`). */
  total: number;
  concurrency: number;
  /** Requests per second in all; unpaced when absent. */
  rate?: number;
  markerStart?: number;
  /** Stop early. */
  signal?: AbortSignal;
}

export interface StreamProgress {
  /** Markers answered 200: the host promised to keep these. */
  acked: Set<number>;
  /** Markers sent whose request failed without an answer (the host was down): no promise was made. */
  unanswered: Set<number>;
  /** Markers answered with another status, by status. */
  refused: Map<number, number[]>;
  sent: number;
}

/**
 * Send `total` numbered metrics. A record whose request fails is not re-sent with the same marker; like
 * an agent dropping an unacknowledged sample, the stream moves on, so "acknowledged" stays an exact set.
 */
export function streamMetrics(o: StreamOptions): { progress: StreamProgress; done: Promise<StreamProgress> } {
  const progress: StreamProgress = { acked: new Set(), unanswered: new Set(), refused: new Map(), sent: 0 };
  const agent = new Agent({ connections: o.concurrency, keepAliveTimeout: 5_000 });
  const start = Date.now();
  let next = 0;
  const worker = async () => {
    for (;;) {
      if (o.signal?.aborted || next >= o.total) return;
      const i = next++;
      if (o.rate) {
        const due = start + (i / o.rate) * 1000;
        const wait = due - Date.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      }
      const marker = (o.markerStart ?? 0) + i;
      const device = o.devices[i % o.devices.length]!;
      progress.sent += 1;
      try {
        const res = await request(`${o.url()}/api/v1/devices/${device}/metrics`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ cpu_usage: (i % 100) + 0.5, memory_total: marker, memory_used: i }),
          dispatcher: agent,
          headersTimeout: 30_000,
          bodyTimeout: 30_000,
        });
        await res.body.dump();
        if (res.statusCode === 200) progress.acked.add(marker);
        else progress.refused.set(res.statusCode, [...(progress.refused.get(res.statusCode) ?? []), marker]);
      } catch {
        progress.unanswered.add(marker);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const done = Promise.all(Array.from({ length: o.concurrency }, worker)).then(async () => {
    await agent.close();
    return progress;
  });
  return { progress, done };
}

/** Read-only access to a host's database. */
export class DbReader {
  readonly db: Database;
  constructor(url: string) {
    this.db = openDatabase(url, { pool: { max: 2, min: 0, idle: 1000, acquire: 30_000 } });
  }

  rows<T extends object = Record<string, unknown>>(sql: string, replacements: Record<string, unknown> = {}): Promise<T[]> {
    return this.db.sequelize.query<T>(sql, { replacements, type: QueryTypes.SELECT });
  }

  /** The mentor's metric rows: marker -> how many rows carry it. */
  async mentorMarkers(): Promise<Map<number, number>> {
    const rows = await this.rows<{ memory_total: unknown; n: unknown }>(
      'SELECT memory_total, COUNT(*) AS n FROM metrics GROUP BY memory_total',
    );
    return new Map(rows.map((r) => [Number(r.memory_total), Number(r.n)]));
  }

  /** Deliveries by status. */
  async deliveries(): Promise<Record<string, number>> {
    const rows = await this.rows<{ status: string; n: unknown }>('SELECT status, COUNT(*) AS n FROM relay_deliveries GROUP BY status');
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.n)]));
  }

  async backlog(): Promise<number> {
    const d = await this.deliveries();
    return (d.pending ?? 0) + (d.inflight ?? 0);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

/** Acknowledged markers that are missing from `present`. */
export function missing(acked: Set<number>, present: Map<number, number> | Set<number>): number[] {
  return [...acked].filter((m) => !present.has(m)).sort((a, b) => a - b);
}

/** Register devices `prefix-0..n-1` on a devices host. */
export async function registerDevices(url: string, n: number, prefix: string): Promise<string[]> {
  const ids = Array.from({ length: n }, (_, i) => `${prefix}-${i}`);
  for (const deviceid of ids) {
    const res = await request(`${url}/api/v1/devices/register`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ deviceid, device_name: deviceid }),
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new Error(`register ${deviceid}: ${res.statusCode} ${text}`);
  }
  return ids;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
