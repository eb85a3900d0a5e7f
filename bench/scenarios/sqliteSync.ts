/**
 * `sqlite-sync`: what `SQLITE_SYNCHRONOUS=full` costs. Two standalone devices hosts (no forwarding: the
 * commit is the whole cost being compared), each on its own SQLite file, one with `normal` (the default)
 * and one with `full`; autocannon posts metrics to each in alternating rounds (normal, full, normal, ...),
 * and the medians are compared. `full` fsyncs the WAL at every commit, so the ratio depends on the disk's
 * fsync latency far more than on the CPU: a laptop NVMe, a cloud volume and tmpfs give very different
 * answers. Group commit (one transaction per batch of requests) is what keeps `full` affordable.
 * PostgreSQL has no such setting here (it runs with `synchronous_commit` on), so the scenario is SQLite only.
 */
import { registerDevices, startDevices } from '../lib/hosts.js';
import { cannon } from '../lib/load.js';
import type { CannonResult } from '../lib/load.js';
import { COMPARISON } from '../lib/report.js';
import { median, round } from '../lib/stats.js';
import type { Scenario, ScenarioOutput } from './types.js';

const CONNECTIONS = 16;

export const sqliteSync: Scenario = {
  name: 'sqlite-sync',
  title: 'SQLite synchronous=full vs normal (ingest)',
  dialects: ['sqlite'],
  async run(ctx): Promise<ScenarioOutput> {
    const roundSec = ctx.quick ? 4 : 8;
    const pairs = ctx.quick ? 1 : 3;
    const normalDb = await ctx.ws.database('sync_normal');
    const fullDb = await ctx.ws.database('sync_full');
    const normal = await startDevices(ctx.ws, 'devices-normal', { DATABASE_URL: normalDb.url, SQLITE_SYNCHRONOUS: 'normal' });
    const full = await startDevices(ctx.ws, 'devices-full', { DATABASE_URL: fullDb.url, SQLITE_SYNCHRONOUS: 'full' });
    const devicesNormal = await registerDevices(normal.url, 20);
    const devicesFull = await registerDevices(full.url, 20);
    const run = (url: string, devices: string[], sec: number) => cannon({ url, devices, connections: CONNECTIONS, durationSec: sec });
    await run(normal.url, devicesNormal, 2); // warm-up: JIT, SQLite caches
    await run(full.url, devicesFull, 2);
    const n: CannonResult[] = [];
    const f: CannonResult[] = [];
    for (let i = 0; i < pairs; i++) {
      n.push(await run(normal.url, devicesNormal, roundSec));
      f.push(await run(full.url, devicesFull, roundSec));
      ctx.log(`round ${i + 1}: normal ${round(n[i]!.rps, 0)} req/s, full ${round(f[i]!.rps, 0)} req/s`);
    }
    const rpsN = median(n.map((r) => r.rps));
    const rpsF = median(f.map((r) => r.rps));
    const errors = [...n, ...f].reduce((a, r) => a + r.non2xx + r.errors, 0);
    const ratio = rpsF / rpsN;
    return {
      checks: [{ label: 'ingest throughput full / normal', value: round(ratio), goal: COMPARISON, met: errors === 0 }],
      measured: {
        round_sec: roundSec,
        rounds: pairs,
        connections: CONNECTIONS,
        normal_rps: round(rpsN, 0),
        full_rps: round(rpsF, 0),
        ratio: round(ratio),
        normal_p99_ms: median(n.map((r) => r.latency.p99)),
        full_p99_ms: median(f.map((r) => r.latency.p99)),
        non2xx_or_errors: errors,
      },
      notes: [
        'full fsyncs the WAL at every commit (normal only at checkpoints), so the ratio is mostly the disk: measure on the disk you deploy on.',
      ],
    };
  },
};
