/**
 * Load generators. `cannon` drives a devices host with autocannon (throughput and latency scenarios);
 * `stream` is a small undici loop that numbers every record it sends and remembers which ones were
 * acknowledged with 200, for the scenarios that count losses across crashes.
 */
import autocannon from 'autocannon';
import { Agent, request } from 'undici';

export interface CannonResult {
  /** Requests answered 2xx per second over the run. */
  rps: number;
  ok: number;
  non2xx: number;
  errors: number;
  durationSec: number;
  latency: { p50: number; p90: number; p99: number; max: number; mean: number };
}

/** One metrics sample with `memory_total` as the record's marker (the fields a device posts). */
export function metricSample(marker: number) {
  return {
    cpu_usage: 12.5,
    cpu_temp: 48.5,
    memory_total: marker,
    memory_used: 8_000_000_000,
    swap_used: 0,
    disk_total: 500_000_000_000,
    disk_used: 120_000_000_000,
    net_bytes_in: 123_456,
    net_bytes_out: 654_321,
  };
}

/** A metrics request body with `memory_total` as the record's marker. */
export function metricBody(marker: number): string {
  return JSON.stringify(metricSample(marker));
}

export interface CannonOptions {
  url: string;
  devices: string[];
  connections?: number;
  durationSec?: number;
  amount?: number;
  /** Requests per second in all (open loop), or unlimited. */
  rate?: number;
  /** First marker; each request takes the next one. */
  markerStart?: number;
  /** Called with the marker and the send time of every request (for latency to the mentor). */
  onSend?: (marker: number, at: number) => void;
}

/** POST metrics round-robin over `devices` with autocannon. */
export async function cannon(o: CannonOptions): Promise<CannonResult> {
  let marker = o.markerStart ?? 0;
  let i = 0;
  const result = await autocannon({
    url: o.url,
    connections: o.connections ?? 16,
    ...(o.amount ? { amount: o.amount } : { duration: o.durationSec ?? 10 }),
    overallRate: o.rate,
    headers: { 'content-type': 'application/json' },
    requests: [
      {
        method: 'POST',
        setupRequest: (req) => {
          const m = marker++;
          o.onSend?.(m, Date.now());
          const device = o.devices[i++ % o.devices.length]!;
          return { ...req, path: `/api/v1/devices/${device}/metrics`, body: metricBody(m) };
        },
      },
    ],
  });
  const ok = result['2xx'];
  return {
    rps: ok / result.duration,
    ok,
    non2xx: result.non2xx,
    errors: result.errors,
    durationSec: result.duration,
    latency: {
      p50: result.latency.p50,
      p90: result.latency.p90,
      p99: result.latency.p99,
      max: result.latency.max,
      mean: result.latency.average,
    },
  };
}

export interface StreamOptions {
  url: () => string;
  devices: string[];
  /** Requests in flight. */
  concurrency: number;
  /** Stop after this many acknowledged records, or when `signal` aborts. */
  total: number;
  markerStart?: number;
  signal?: AbortSignal;
  /** Between a failed request and the next try of the same worker (the host may be restarting). */
  retryDelayMs?: number;
  /** Filled as answers arrive, for callers that act on progress (crash after half). */
  acked?: Set<number>;
}

export interface StreamResult {
  /** Markers answered 200: the host promised to keep these. */
  acked: Set<number>;
  /** Markers sent whose answer never came (connection reset by a crash): not promised, may or may not exist. */
  unanswered: number;
  /** Other answers by status. */
  statuses: Record<number, number>;
}

/**
 * Send numbered metrics until `total` are acknowledged. A request that fails (the host was killed) is not
 * retried with the same marker: like a device agent that gives up on an unacknowledged sample, the next
 * request carries a new one, so "acknowledged" stays an exact set.
 */
export async function stream(o: StreamOptions): Promise<StreamResult> {
  const agent = new Agent({ connections: o.concurrency, keepAliveTimeout: 10_000 });
  const acked = o.acked ?? new Set<number>();
  const statuses: Record<number, number> = {};
  let unanswered = 0;
  let marker = o.markerStart ?? 0;
  let d = 0;
  const worker = async () => {
    while (acked.size < o.total && !o.signal?.aborted) {
      const m = marker++;
      const device = o.devices[d++ % o.devices.length]!;
      try {
        const res = await request(`${o.url()}/api/v1/devices/${device}/metrics`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: metricBody(m),
          dispatcher: agent,
          headersTimeout: 30_000,
          bodyTimeout: 30_000,
        });
        await res.body.dump();
        if (res.statusCode === 200) acked.add(m);
        else statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
      } catch {
        unanswered += 1;
        await new Promise((r) => setTimeout(r, o.retryDelayMs ?? 50));
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, worker));
  await agent.close();
  return { acked, unanswered, statuses };
}

export interface PacedResult {
  ok: number;
  failed: number;
  /** Ingest latency of each acknowledged request, ms. */
  latencies: number[];
  /** Marker -> the moment its request was handed to the socket (ms since epoch). */
  sentAt: Map<number, number>;
}

/**
 * Open-loop load at a fixed rate with exact send times, for latency. (autocannon builds a request when the
 * previous one on its connection returns, then holds it until the rate allows: its setup time is not the
 * send time, and at low rates the difference is hundreds of milliseconds.) At most `maxInFlight` requests
 * wait at once; beyond that the schedule slips rather than piling up.
 */
export async function paced(o: {
  url: string;
  devices: string[];
  rate: number;
  durationSec: number;
  markerStart?: number;
  maxInFlight?: number;
}): Promise<PacedResult> {
  const agent = new Agent({ connections: o.maxInFlight ?? 128, keepAliveTimeout: 10_000 });
  const total = Math.round(o.rate * o.durationSec);
  const sentAt = new Map<number, number>();
  const latencies: number[] = [];
  let ok = 0;
  let failed = 0;
  const inflight = new Set<Promise<void>>();
  const start = Date.now();
  for (let i = 0; i < total; i++) {
    const due = start + (i * 1000) / o.rate;
    const wait = due - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    while (inflight.size >= (o.maxInFlight ?? 128)) await Promise.race(inflight);
    const marker = (o.markerStart ?? 0) + i;
    const device = o.devices[i % o.devices.length]!;
    const body = metricBody(marker);
    const sent = Date.now();
    sentAt.set(marker, sent);
    const p = request(`${o.url}/api/v1/devices/${device}/metrics`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      dispatcher: agent,
    })
      .then(async (res) => {
        await res.body.dump();
        if (res.statusCode === 200) {
          ok += 1;
          latencies.push(Date.now() - sent);
        } else failed += 1;
      })
      .catch(() => {
        failed += 1;
      })
      .finally(() => inflight.delete(p));
    inflight.add(p);
  }
  await Promise.all(inflight);
  await agent.close();
  return { ok, failed, latencies, sentAt };
}
