/**
 * `raqeem-relay simulate`: N fake device agents against a devices host. Each registers, then the fleet
 * sends `rate` requests per second in all, spread over the devices, shaped like a real agent's traffic:
 * mostly metrics (a random walk, so charts look plausible), activity batches, process snapshots, alerts when
 * the CPU runs hot, the odd screenshot record, and command polls that answer pending commands.
 *
 * Pacing is open-loop (requests are started on schedule, not after the previous one returns) with a cap on
 * requests in flight, so a slow host shows up as latency and "skipped" rather than as a silently lower rate.
 */
import { randomUUID } from 'node:crypto';
import { Agent, request } from 'undici';

export interface SimulationOptions {
  url: string;
  devices: number;
  rate: number;
  durationSec: number;
  /** Most requests in flight at once (256); beyond it a scheduled request is skipped and counted. */
  maxInFlight?: number;
  signal?: AbortSignal;
}

export interface SimulationSummary {
  url: string;
  devices: number;
  durationSec: number;
  sent: number;
  ok: number;
  failed: number;
  skipped: number;
  byKind: Record<string, { ok: number; failed: number }>;
  statuses: Record<string, number>;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  commandsAnswered: number;
}

interface Device {
  id: string;
  cpu: number;
  memUsed: number;
  netIn: number;
  netOut: number;
  /** Its `device_token` when the host runs with DEVICE_AUTH=token (answered by registration). */
  token?: string;
}

const GiB = 1024 ** 3;
const APPS = ['code', 'firefox', 'slack', 'terminal', 'zoom', 'spotify'];
const ACTIVITY_TYPES = ['app_launch', 'app_focus', 'idle', 'file_open', 'web_visit'];
const PROCS = ['systemd', 'sshd', 'nginx', 'node', 'postgres', 'chrome', 'python3', 'dockerd'];
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
const walk = (v: number, step: number, min: number, max: number) => Math.min(max, Math.max(min, v + (Math.random() * 2 - 1) * step));

type Kind = 'metrics' | 'activities' | 'processes' | 'alerts' | 'screenshots' | 'commands';
/** Cumulative weights: an agent mostly reports metrics. */
const MIX: Array<[Kind, number]> = [
  ['metrics', 0.5],
  ['activities', 0.7],
  ['processes', 0.8],
  ['alerts', 0.88],
  ['screenshots', 0.93],
  ['commands', 1],
];

export async function runSimulation(o: SimulationOptions): Promise<SimulationSummary> {
  const agent = new Agent({ connections: 64, keepAliveTimeout: 10_000 });
  const latencies: number[] = [];
  const summary: SimulationSummary = {
    url: o.url,
    devices: o.devices,
    durationSec: o.durationSec,
    sent: 0,
    ok: 0,
    failed: 0,
    skipped: 0,
    byKind: {},
    statuses: {},
    latencyMs: { p50: 0, p95: 0, p99: 0, max: 0 },
    commandsAnswered: 0,
  };
  const call = async (kind: string, method: 'GET' | 'POST', path: string, body?: unknown, token?: string): Promise<unknown> => {
    const started = performance.now();
    summary.sent += 1;
    const k = (summary.byKind[kind] ??= { ok: 0, failed: 0 });
    try {
      const res = await request(o.url + path, {
        method,
        dispatcher: agent,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.body.text();
      latencies.push(performance.now() - started);
      summary.statuses[res.statusCode] = (summary.statuses[res.statusCode] ?? 0) + 1;
      const good = res.statusCode >= 200 && res.statusCode < 300;
      if (good) summary.ok += 1;
      else summary.failed += 1;
      k[good ? 'ok' : 'failed'] += 1;
      return good && text ? JSON.parse(text) : undefined;
    } catch (err) {
      summary.failed += 1;
      k.failed += 1;
      const code = (err as { code?: string }).code ?? 'error';
      summary.statuses[code] = (summary.statuses[code] ?? 0) + 1;
      return undefined;
    }
  };

  const run = randomUUID().slice(0, 8);
  const fleet: Device[] = Array.from({ length: o.devices }, (_, i) => ({
    id: `sim-${run}-${String(i + 1).padStart(4, '0')}`,
    cpu: 10 + Math.random() * 40,
    memUsed: (2 + Math.random() * 6) * GiB,
    netIn: 0,
    netOut: 0,
  }));
  await Promise.all(
    fleet.map(async (d, i) => {
      const answer = await call('register', 'POST', '/api/v1/devices/register', {
        deviceid: d.id,
        device_name: `Simulated device ${i + 1}`,
        device_type: pick(['laptop', 'desktop', 'server']),
        os: pick(['linux', 'windows', 'macos']),
        device_location: pick(['HQ', 'Lab', 'Remote']),
        ip_address: `10.${(i >> 8) & 255}.${i & 255}.${10 + (i % 200)}`,
        mac_address: `02:00:00:${[i >> 16, i >> 8, i].map((b) => (b & 255).toString(16).padStart(2, '0')).join(':')}`,
        current_user: `user${i + 1}`,
      });
      d.token = (answer as { device_token?: string } | undefined)?.device_token;
    }),
  );

  const one = async (d: Device): Promise<void> => {
    const callAs = (kind: string, method: 'GET' | 'POST', path: string, body?: unknown) => call(kind, method, path, body, d.token);
    const roll = Math.random();
    const kind = MIX.find(([, w]) => roll < w)![0];
    const base = `/api/v1/devices/${encodeURIComponent(d.id)}`;
    switch (kind) {
      case 'metrics':
        d.cpu = walk(d.cpu, 8, 1, 100);
        d.memUsed = walk(d.memUsed, 0.2 * GiB, 0.5 * GiB, 15 * GiB);
        d.netIn += Math.floor(Math.random() * 500_000);
        d.netOut += Math.floor(Math.random() * 200_000);
        await callAs(kind, 'POST', `${base}/metrics`, {
          cpu_usage: Math.round(d.cpu * 10) / 10,
          cpu_temp: Math.round((35 + d.cpu * 0.5) * 10) / 10,
          memory_total: 16 * GiB,
          memory_used: Math.round(d.memUsed),
          swap_used: Math.round(Math.max(0, d.memUsed - 14 * GiB)),
          disk_total: 512 * GiB,
          disk_used: 200 * GiB,
          net_bytes_in: d.netIn,
          net_bytes_out: d.netOut,
        });
        return;
      case 'activities':
        await callAs(
          kind,
          'POST',
          `${base}/activities`,
          Array.from({ length: 1 + Math.floor(Math.random() * 4) }, () => ({
            activity_type: pick(ACTIVITY_TYPES),
            description: `Simulated ${pick(['work', 'browsing', 'meeting', 'break'])}`,
            app: pick(APPS),
            duration: Math.floor(Math.random() * 600),
          })),
        );
        return;
      case 'processes':
        await callAs(
          kind,
          'POST',
          `${base}/processes`,
          PROCS.slice(0, 3 + Math.floor(Math.random() * (PROCS.length - 2))).map((name, pid) => ({
            pid: 100 + pid,
            process_name: name,
            cpu: Math.round(Math.random() * d.cpu * 10) / 10,
            memory: Math.floor(Math.random() * 512 * 1024 * 1024),
            command_text: `/usr/bin/${name}`,
          })),
        );
        return;
      case 'alerts': {
        const hot = d.cpu > 80;
        await callAs(kind, 'POST', `${base}/alerts`, [
          {
            level: hot ? 'critical' : pick(['info', 'warning'] as const),
            alert_type: hot ? 'cpu_high' : pick(['disk_space', 'memory_high', 'login']),
            message: hot ? `CPU at ${d.cpu.toFixed(1)}%` : 'Simulated alert',
            value: Math.round(d.cpu * 10) / 10,
            threshold: 80,
          },
        ]);
        return;
      }
      case 'screenshots':
        await callAs(kind, 'POST', `${base}/screenshots`, {
          path: `simulated/${d.id}/${Date.now()}.png`,
          resolution: '1920x1080',
          size: 150_000 + Math.floor(Math.random() * 100_000),
        });
        return;
      case 'commands': {
        const pending = await callAs(kind, 'GET', `${base}/commands/pending`);
        for (const c of Array.isArray(pending) ? (pending as Array<{ commandid: string; command_text: string }>) : []) {
          const r = await callAs('command-results', 'POST', `/api/v1/devices/commands/${encodeURIComponent(c.commandid)}/result`, {
            status: 'completed',
            result: `simulated output of ${c.command_text}`,
            exit_code: 0,
          });
          if (r !== undefined) summary.commandsAnswered += 1;
        }
      }
    }
  };

  const maxInFlight = o.maxInFlight ?? 256;
  const inFlight = new Set<Promise<void>>();
  const started = performance.now();
  const endAt = started + o.durationSec * 1000;
  let scheduled = 0;
  while (!o.signal?.aborted && performance.now() < endAt) {
    const due = Math.floor(((performance.now() - started) / 1000) * o.rate);
    for (; scheduled < due; scheduled++) {
      if (inFlight.size >= maxInFlight) {
        summary.skipped += 1;
        continue;
      }
      const p = one(fleet[scheduled % fleet.length]!).finally(() => inFlight.delete(p));
      inFlight.add(p);
    }
    await new Promise((r) => setTimeout(r, Math.max(1, Math.min(50, 1000 / o.rate))));
  }
  await Promise.all(inFlight);
  await agent.close();
  summary.durationSec = Math.round((performance.now() - started) / 10) / 100;

  latencies.sort((a, b) => a - b);
  const q = (p: number) => Math.round((latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0) * 10) / 10;
  summary.latencyMs = { p50: q(0.5), p95: q(0.95), p99: q(0.99), max: q(1) };
  return summary;
}

export function printSummary(s: SimulationSummary, out: NodeJS.WritableStream): void {
  const lines = [
    `simulated ${s.devices} devices against ${s.url} for ${s.durationSec} s`,
    `  requests  ${s.sent} sent (${(s.sent / Math.max(s.durationSec, 0.001)).toFixed(1)}/s), ${s.ok} ok, ${s.failed} failed, ${s.skipped} skipped (too many in flight)`,
    `  latency   p50 ${s.latencyMs.p50} ms, p95 ${s.latencyMs.p95} ms, p99 ${s.latencyMs.p99} ms, max ${s.latencyMs.max} ms`,
    `  statuses  ${
      Object.entries(s.statuses)
        .map(([k, v]) => `${k}: ${v}`)
        .join(', ') || 'none'
    }`,
    ...Object.entries(s.byKind).map(([k, v]) => `  ${k.padEnd(16)} ${v.ok} ok${v.failed ? `, ${v.failed} failed` : ''}`),
    `  commands answered: ${s.commandsAnswered}`,
  ];
  out.write(`${lines.join('\n')}\n`);
}
