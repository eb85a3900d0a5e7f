/**
 * Scenarios 1 and 1b, ingestion overhead: `POST /api/v1/devices/{id}/metrics` throughput of a devices host
 * that forwards every metric (`ingest`: to the mentor AND to one webhook subscriber; `ingest-mentor`: to the
 * mentor only), divided by the same host with forwarding off (no MENTOR_API_URL, no webhook). Two host
 * processes, each on its own fresh database, the receivers are sink processes; autocannon drives the load.
 *
 * Rounds alternate off, on, off, on, ..., off; each "on" round is compared with the mean of the "off"
 * rounds on either side. After an "on" round the harness waits for that host's outbox to drain before the
 * next round, so an "off" round never runs beside the other host's deliveries, and the time the drain took
 * is reported: the dispatcher's work that did not fit inside the round.
 *
 * CPU per 1,000 records (from /proc/<pid>/stat, bench/lib/cpu.ts) is measured over each round, and for an
 * "on" round over the round and its drain, so every delivery of the round's records is in it: the devices
 * host, the PostgreSQL backends of its database, and each receiver.
 */
import { randomBytes } from 'node:crypto';
import { cpuWindow, pgBackends, pidSource } from '../lib/cpu.js';
import type { CpuSource } from '../lib/cpu.js';
import { addWebhook, DbProbe, registerDevices, startDevices, until } from '../lib/hosts.js';
import { cannon } from '../lib/load.js';
import type { CannonResult } from '../lib/load.js';
import { startSinkProcess } from '../lib/sink.js';
import type { SinkHandle } from '../lib/sink.js';
import { median, round } from '../lib/stats.js';
import type { Scenario, ScenarioContext, ScenarioOutput } from './types.js';

const CONNECTIONS = 16;

/** CPU milliseconds per 1,000 acknowledged records, by source, summed over rounds. */
function perThousand(spent: Array<Record<string, number>>, records: number, suffix: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const key of Object.keys(spent[0] ?? {})) {
    const ms = spent.reduce((a, s) => a + (s[key] ?? 0), 0);
    out[`cpu_ms_per_1k_${key}_${suffix}`] = round((ms / Math.max(1, records)) * 1000, 0);
  }
  return out;
}

async function runIngest(ctx: ScenarioContext, webhook: boolean, goal: number): Promise<ScenarioOutput> {
  const roundSec = ctx.quick ? 5 : 10;
  const pairs = ctx.quick ? 1 : 3;
  const mentorSink = await startSinkProcess();
  const hookSink: SinkHandle | null = webhook ? await startSinkProcess() : null;
  try {
    const token = randomBytes(16).toString('hex');
    const common = { RELAY_ADMIN_TOKEN: token, WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' };
    const onDb = await ctx.ws.database('ingest_on');
    const offDb = await ctx.ws.database('ingest_off');
    const on = await startDevices(ctx.ws, 'devices-on', { ...common, DATABASE_URL: onDb.url, MENTOR_API_URL: mentorSink.url });
    const off = await startDevices(ctx.ws, 'devices-off', { ...common, DATABASE_URL: offDb.url });
    if (hookSink) await addWebhook(on.url, token, `${hookSink.url}/hook`);
    const devicesOn = await registerDevices(on.url, 20);
    const devicesOff = await registerDevices(off.url, 20);
    const probe = new DbProbe(onDb.url);
    const pgOn = pgBackends(onDb.url);
    const pgOff = pgBackends(offDb.url);
    const pgCounted = ctx.dialect === 'postgres';
    const onSources: Record<string, CpuSource> = {
      host: pidSource(on.pid),
      ...(pgCounted ? { postgres: pgOn } : {}),
      mentor_sink: pidSource(mentorSink.child.pid),
      ...(hookSink ? { webhook_sink: pidSource(hookSink.child.pid) } : {}),
    };
    const offSources: Record<string, CpuSource> = { host: pidSource(off.pid), ...(pgCounted ? { postgres: pgOff } : {}) };
    try {
      const drain = async () => until('outbox drained', () => probe.drained(), 300_000, 50);
      const runOn = async (sec: number) => cannon({ url: on.url, devices: devicesOn, connections: CONNECTIONS, durationSec: sec });
      const runOff = async (sec: number) => cannon({ url: off.url, devices: devicesOff, connections: CONNECTIONS, durationSec: sec });
      const offCpu: Array<Record<string, number>> = [];
      const onCpu: Array<Record<string, number>> = [];
      const measuredOff = async (sec: number) => {
        const w = await cpuWindow(offSources);
        const r = await runOff(sec);
        offCpu.push(await w.stop());
        return r;
      };
      // Warm-up: JIT, connection pools, SQLite caches.
      await runOff(2);
      await runOn(2);
      await drain();

      const offs: CannonResult[] = [await measuredOff(roundSec)];
      const ons: CannonResult[] = [];
      const drains: number[] = [];
      const ratios: number[] = [];
      for (let i = 0; i < pairs; i++) {
        const w = await cpuWindow(onSources);
        const r = await runOn(roundSec);
        ons.push(r);
        drains.push(await drain());
        onCpu.push(await w.stop());
        offs.push(await measuredOff(roundSec));
        const limit = (offs[i]!.rps + offs[i + 1]!.rps) / 2;
        ratios.push(r.rps / limit);
        ctx.log(
          `round ${i + 1}: on ${r.rps.toFixed(0)}/s (p99 ${r.latency.p99} ms), off ${limit.toFixed(0)}/s, ratio ${(r.rps / limit).toFixed(2)}, drain after ${drains[i]} ms`,
        );
      }
      const mentor = await mentorSink.stats();
      const hooks = hookSink ? await hookSink.stats() : null;
      const acknowledged = ons.reduce((a, r) => a + r.ok, 0);
      const ratio = median(ratios);
      const errors = [...ons, ...offs].reduce((a, r) => a + r.non2xx + r.errors, 0);
      const cpuOn = perThousand(onCpu, acknowledged, 'on');
      const cpuOff = perThousand(
        offCpu,
        offs.reduce((a, r) => a + r.ok, 0),
        'off',
      );
      ctx.log(`CPU ms per 1,000 records: ${JSON.stringify({ ...cpuOn, ...cpuOff })}`);
      return {
        checks: [
          {
            label: `throughput forwarding on / off (${webhook ? 'mentor + one webhook' : 'mentor only'})`,
            value: round(ratio),
            goal: `>= ${goal}`,
            met: ratio >= goal && errors === 0,
          },
        ],
        measured: {
          round_sec: roundSec,
          rounds_on: pairs,
          connections: CONNECTIONS,
          on_rps: round(median(ons.map((r) => r.rps)), 0),
          off_rps: round(median(offs.map((r) => r.rps)), 0),
          ratio: round(ratio),
          ratios: ratios.map((r) => round(r)).join(', '),
          on_p99_ms: median(ons.map((r) => r.latency.p99)),
          off_p99_ms: median(offs.map((r) => r.latency.p99)),
          drain_after_round_ms: median(drains),
          non2xx_or_errors: errors,
          ...cpuOn,
          ...cpuOff,
          mentor_records: mentor.records,
          mentor_requests: mentor.requests,
          ...(hooks ? { webhook_requests: hooks.requests } : {}),
          // Warm-up records count too in the receivers' numbers; this is the measured rounds' total.
          acknowledged_on: acknowledged,
        },
        notes: [
          `Both hosts, the sink${webhook ? 's' : ''}, PostgreSQL and autocannon share the 2 cores; the mentor sink receives batches (about 100 metrics per request when a backlog exists)${webhook ? ', the webhook sink one signed request per event' : ''}.`,
          'cpu_ms_per_1k_*: CPU time (/proc/<pid>/stat) per 1,000 acknowledged records; "on" covers each round and the drain after it. postgres = the backends connected to that host\'s database (PostgreSQL runs only); its WAL writer and checkpointer are not counted.',
        ],
      };
    } finally {
      await probe.close();
      await pgOn.close();
      await pgOff.close();
    }
  } finally {
    await mentorSink.close();
    await hookSink?.close();
  }
}

export const ingest: Scenario = {
  name: 'ingest',
  title: 'Ingestion overhead (mentor + one webhook)',
  run: (ctx) => runIngest(ctx, true, 0.7),
};

export const ingestMentor: Scenario = {
  name: 'ingest-mentor',
  title: 'Ingestion overhead (mentor only)',
  run: (ctx) => runIngest(ctx, false, 0.85),
};
