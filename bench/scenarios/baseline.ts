/**
 * Scenario 6, the seed's design next to ours. `bench/baselines/seed-devices.ts` ports the seed literally
 * (Express, an ORM insert, node-fetch, an un-awaited promise per forward, no outbox). Both forward metrics
 * to a sink standing in for the mentor.
 *
 * 1. Throughput: autocannon rounds (16 connections) alternating seed, ours forwarding to the mentor and one
 *    webhook, ours forwarding to the mentor only, seed, ...; the goal is on the first ratio (ours doing more
 *    work than the seed), the mentor-only ratio is reported beside it.
 * 2. Losses under a crash: a numbered stream of metrics (16 in flight); when half are acknowledged the
 *    devices process is killed with SIGKILL, restarted on the same port and database, and the stream goes
 *    on to the end. Then: which acknowledged records never reached the mentor? Run twice per design: with a
 *    healthy mentor, and with the mentor refusing connections for the 3 s before the crash (a blip: the
 *    seed is retrying those forwards in memory when it dies).
 */
import { randomBytes } from 'node:crypto';
import { addWebhook, DbProbe, registerDevices, startDevices, startSeed, until } from '../lib/hosts.js';
import type { HostProc } from '../lib/hosts.js';
import { cannon } from '../lib/load.js';
import type { CannonResult } from '../lib/load.js';
import { stream } from '../lib/load.js';
import { startSinkProcess } from '../lib/sink.js';
import type { SinkHandle } from '../lib/sink.js';
import { COMPARISON } from '../lib/report.js';
import { median, round } from '../lib/stats.js';
import type { Scenario, ScenarioContext } from './types.js';

type Design = 'seed' | 'ours';

interface CrashRun {
  acked: number;
  lost: number;
  duplicatesAtMentor: number;
  unanswered: number;
}

async function crashRun(ctx: ScenarioContext, design: Design, blip: boolean, total: number): Promise<CrashRun> {
  const sink = await startSinkProcess();
  const db = await ctx.ws.database(`crash_${design}_${blip ? 'blip' : 'ok'}`);
  const env = { DATABASE_URL: db.url, MENTOR_API_URL: sink.url, LOG_LEVEL: 'warn' };
  const start = (port?: number) =>
    design === 'seed' ? startSeed(ctx.ws, `${design}-crash`, env, port) : startDevices(ctx.ws, `${design}-crash`, env, port);
  let host: HostProc = await start();
  const port = host.port;
  try {
    const devices = await registerDevices(host.url, 10);
    const url = host.url;
    const acked = new Set<number>();
    let crashed = false;
    const crash = (async () => {
      // Half the stream, then the crash (after a mentor blip, if asked).
      await until('half the stream acknowledged', async () => acked.size >= total / 2 - (blip ? 1500 : 0), 300_000, 5);
      if (blip) {
        await sink.mode('down');
        await new Promise((r) => setTimeout(r, 3000));
      }
      await host.kill();
      crashed = true;
      if (blip) await sink.mode('ok');
      host = await start(port);
    })();
    const result = await stream({ url: () => url, devices, concurrency: 16, total, acked, retryDelayMs: 100 });
    await crash;
    if (!crashed) throw new Error('the stream ended before the crash');
    // Let every forward settle: our outbox drains; the seed has nothing left to send after its retries.
    if (design === 'ours') {
      const probe = new DbProbe(db.url);
      try {
        await until('outbox drained', () => probe.drained(), 300_000, 100);
      } finally {
        await probe.close();
      }
    } else {
      await settle(sink, 8000);
    }
    const markers = new Set(await sink.markers());
    let lost = 0;
    for (const m of result.acked) if (!markers.has(m)) lost += 1;
    const stats = await sink.stats();
    return { acked: result.acked.size, lost, duplicatesAtMentor: stats.duplicateMarkers, unanswered: result.unanswered };
  } finally {
    await host.kill();
    await sink.close();
  }
}

/** Wait until the sink has seen no new record for `quietMs` (the seed's retries take up to 7 s). */
async function settle(sink: SinkHandle, quietMs: number): Promise<void> {
  let last = -1;
  let since = Date.now();
  for (;;) {
    const n = (await sink.stats()).records;
    if (n !== last) {
      last = n;
      since = Date.now();
    } else if (Date.now() - since > quietMs) return;
    await new Promise((r) => setTimeout(r, 200));
  }
}

export const baseline: Scenario = {
  name: 'baseline',
  title: "The seed's design vs ours",
  async run(ctx) {
    const roundSec = ctx.quick ? 5 : 10;
    const pairs = ctx.quick ? 1 : 3;
    const total = ctx.quick ? 4000 : 10_000;

    // 1. Throughput, 16 connections, interleaved rounds: the seed (mentor forwarding), ours forwarding to
    // the mentor and one webhook, ours forwarding to the mentor only. Every receiver is its own sink.
    const sink = await startSinkProcess();
    const hookSink = await startSinkProcess();
    const seeds: CannonResult[] = [];
    const ours: CannonResult[] = [];
    const oursMentor: CannonResult[] = [];
    try {
      const token = randomBytes(16).toString('hex');
      const common = { RELAY_ADMIN_TOKEN: token, WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', MENTOR_API_URL: sink.url };
      const seedDb = await ctx.ws.database('baseline_seed');
      const oursDb = await ctx.ws.database('baseline_ours');
      const oursMentorDb = await ctx.ws.database('baseline_ours_mentor');
      const seed = await startSeed(ctx.ws, 'seed', { DATABASE_URL: seedDb.url, MENTOR_API_URL: sink.url, LOG_LEVEL: 'warn' });
      const our = await startDevices(ctx.ws, 'ours', { ...common, DATABASE_URL: oursDb.url });
      const ourMentor = await startDevices(ctx.ws, 'ours-mentor', { ...common, DATABASE_URL: oursMentorDb.url });
      await addWebhook(our.url, token, `${hookSink.url}/hook`);
      const seedDevices = await registerDevices(seed.url, 20);
      const ourDevices = await registerDevices(our.url, 20);
      const ourMentorDevices = await registerDevices(ourMentor.url, 20);
      const probe = new DbProbe(oursDb.url);
      const probeMentor = new DbProbe(oursMentorDb.url);
      try {
        const drained = async () => {
          await until('our outbox drained', () => probe.drained(), 300_000);
          await until('our outbox drained (mentor only)', () => probeMentor.drained(), 300_000);
        };
        const runSeed = (sec: number) => cannon({ url: seed.url, devices: seedDevices, connections: 16, durationSec: sec });
        const runOurs = (sec: number) => cannon({ url: our.url, devices: ourDevices, connections: 16, durationSec: sec });
        const runOursMentor = (sec: number) => cannon({ url: ourMentor.url, devices: ourMentorDevices, connections: 16, durationSec: sec });
        await runSeed(2);
        await runOurs(2);
        await runOursMentor(2);
        for (let i = 0; i < pairs; i++) {
          // Each design's round starts with no other design's deliveries still running beside it.
          await drained();
          seeds.push(await runSeed(roundSec));
          ours.push(await runOurs(roundSec));
          await drained();
          oursMentor.push(await runOursMentor(roundSec));
          ctx.log(
            `round ${i + 1}: seed ${seeds[i]!.rps.toFixed(0)}/s, ours (mentor + webhook) ${ours[i]!.rps.toFixed(0)}/s, ours (mentor) ${oursMentor[i]!.rps.toFixed(0)}/s`,
          );
        }
      } finally {
        await probe.close();
        await probeMentor.close();
      }
    } finally {
      await sink.close();
      await hookSink.close();
    }

    // 2. Losses across a SIGKILL.
    const crashes: Record<string, CrashRun> = {};
    for (const design of ['seed', 'ours'] as const) {
      for (const blip of [false, true]) {
        const r = await crashRun(ctx, design, blip, total);
        crashes[`${design}_${blip ? 'blip' : 'healthy'}`] = r;
        ctx.log(`${design}, ${blip ? 'mentor blip before the crash' : 'healthy mentor'}: ${r.acked} acknowledged, ${r.lost} lost`);
      }
    }
    const seedRps = median(seeds.map((r) => r.rps));
    const ourRps = median(ours.map((r) => r.rps));
    const ourMentorRps = median(oursMentor.map((r) => r.rps));
    const ratio = ourRps / seedRps;
    const ourLost = crashes.ours_healthy!.lost + crashes.ours_blip!.lost;
    return {
      checks: [
        { label: 'acknowledged records lost across SIGKILL (ours)', value: ourLost, goal: '0', met: ourLost === 0 },
        {
          label: 'acknowledged records lost across SIGKILL (seed)',
          value: crashes.seed_healthy!.lost + crashes.seed_blip!.lost,
          goal: COMPARISON,
          met: true,
        },
        { label: 'ingest throughput ours (mentor + one webhook) / seed (mentor)', value: round(ratio), goal: '>= 2.0', met: ratio >= 2 },
        { label: 'ingest throughput ours / seed, mentor only', value: round(ourMentorRps / seedRps), goal: COMPARISON, met: true },
      ],
      measured: {
        seed_rps: round(seedRps, 0),
        ours_rps: round(ourRps, 0),
        ours_mentor_only_rps: round(ourMentorRps, 0),
        ours_over_seed: round(ratio),
        ours_mentor_only_over_seed: round(ourMentorRps / seedRps),
        connections: 16,
        round_sec: roundSec,
        rounds: pairs,
        stream_total: total,
        ...Object.fromEntries(
          Object.entries(crashes).flatMap(([k, r]) => [
            [`${k}_acked`, r.acked],
            [`${k}_lost`, r.lost],
            [`${k}_duplicates_at_mentor`, r.duplicatesAtMentor],
          ]),
        ),
      },
      notes: [
        'The seed answers 200 before its forward is written anywhere: whatever is in flight or waiting for a retry when the process dies is gone. Ours commits the delivery with the record, so a restart (or a worker) sends it; a crash mid-request can send a record twice, which the mentor de-duplicates by record id (duplicates_at_mentor counts those second copies at the sink).',
      ],
    };
  },
};
