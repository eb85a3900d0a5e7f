/**
 * Scenario 3, isolation: ingestion p99 latency at a fixed rate while the mentor accepts connections but
 * never answers, divided by p99 with a healthy mentor. One devices host forwarding to a sink whose mode
 * the harness flips between `ok` and `hang`; autocannon at a fixed overall rate (latencies corrected for
 * coordinated omission). Rounds alternate healthy, hanging, healthy, hanging; before a healthy round the
 * backlog left by the hang is drained, so the healthy rounds measure a healthy host.
 */
import { DbProbe, registerDevices, startDevices, until } from '../lib/hosts.js';
import { cannon } from '../lib/load.js';
import type { CannonResult } from '../lib/load.js';
import { startSinkProcess } from '../lib/sink.js';
import { median, round } from '../lib/stats.js';
import type { Scenario } from './types.js';

export const isolation: Scenario = {
  name: 'isolation',
  title: 'Isolation from a hanging mentor',
  async run(ctx) {
    const rate = 200;
    const roundSec = ctx.quick ? 8 : 20;
    const rounds = ctx.quick ? 1 : 2;
    const sink = await startSinkProcess();
    try {
      const db = await ctx.ws.database('isolation');
      const host = await startDevices(ctx.ws, 'devices', { DATABASE_URL: db.url, MENTOR_API_URL: sink.url });
      const devices = await registerDevices(host.url, 20);
      const probe = new DbProbe(db.url);
      try {
        const load = () => cannon({ url: host.url, devices, connections: 32, rate, durationSec: roundSec });
        await cannon({ url: host.url, devices, connections: 16, durationSec: 2 }); // warm-up
        const healthy: CannonResult[] = [];
        const hanging: CannonResult[] = [];
        let hungRequests = 0;
        for (let i = 0; i < rounds; i++) {
          await sink.mode('ok');
          await until('backlog drained', () => probe.drained(), 300_000);
          healthy.push(await load());
          await sink.mode('hang');
          const before = (await probe.deliveries()).pending ?? 0;
          hanging.push(await load());
          hungRequests += ((await probe.deliveries()).pending ?? 0) - before;
          ctx.log(`round ${i + 1}: p99 healthy ${healthy[i]!.latency.p99} ms, hanging ${hanging[i]!.latency.p99} ms`);
        }
        await sink.mode('ok');
        await until('backlog drained after the hang', () => probe.drained(), 300_000);
        const dead = (await probe.deliveries()).dead ?? 0;
        const p99h = median(healthy.map((r) => r.latency.p99));
        const p99x = median(hanging.map((r) => r.latency.p99));
        const ratio = p99x / p99h;
        const errors = [...healthy, ...hanging].reduce((a, r) => a + r.non2xx + r.errors, 0);
        return {
          checks: [
            { label: 'ingest p99 hanging / healthy mentor', value: round(ratio), goal: '<= 1.2', met: ratio <= 1.2 && errors === 0 },
          ],
          measured: {
            rate_rps: rate,
            round_sec: roundSec,
            rounds,
            healthy_p50_ms: median(healthy.map((r) => r.latency.p50)),
            healthy_p99_ms: p99h,
            hanging_p50_ms: median(hanging.map((r) => r.latency.p50)),
            hanging_p99_ms: p99x,
            ratio: round(ratio),
            non2xx_or_errors: errors,
            backlog_grown_while_hanging: hungRequests,
            dead_after_recovery: dead,
          },
          notes: [
            "While the mentor hangs, at most the mentor target's concurrency (4) requests wait for FORWARD_TIMEOUT (10 s); the timeouts open the circuit, the backlog waits without spending attempts and drains when the mentor answers again (dead_after_recovery counts deliveries lost to the hang: 0 is the goal).",
          ],
        };
      } finally {
        await probe.close();
      }
    } finally {
      await sink.close();
    }
  },
};
