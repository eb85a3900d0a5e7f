/**
 * Scenario 4, memory: the devices host's RSS while deliveries pile up for a mentor that is down
 * (MENTOR_API_URL points at a port nobody listens on). 100,000 metrics are ingested; RSS is sampled from
 * /proc every 500 ms during the ingest and for a while after. The outbox keeps pending deliveries in the
 * database, not in memory, so RSS should not follow the backlog. Then the mentor comes up on that port and
 * the backlog drains: nothing lost.
 */
import { DbProbe, freePort, registerDevices, startDevices, until } from '../lib/hosts.js';
import { cannon } from '../lib/load.js';
import { startSinkProcess } from '../lib/sink.js';
import { mb, round, slope } from '../lib/stats.js';
import type { Scenario } from './types.js';

export const memory: Scenario = {
  name: 'memory',
  title: 'Memory with a down mentor',
  async run(ctx) {
    const total = ctx.quick ? 20_000 : 100_000;
    const settleSec = ctx.quick ? 10 : 30;
    const mentorPort = await freePort();
    const db = await ctx.ws.database('memory');
    const host = await startDevices(ctx.ws, 'devices', { DATABASE_URL: db.url, MENTOR_API_URL: `http://127.0.0.1:${mentorPort}` });
    const devices = await registerDevices(host.url, 20);
    const probe = new DbProbe(db.url);
    try {
      const samples: Array<{ t: number; rss: number; acked: number }> = [];
      let acked = 0;
      const startRss = host.rss();
      const timer = setInterval(() => samples.push({ t: Date.now(), rss: host.rss(), acked }), 500);
      const chunk = total / 10;
      let errors = 0;
      for (let i = 0; i < 10; i++) {
        const r = await cannon({ url: host.url, devices, connections: 16, amount: chunk, markerStart: i * chunk });
        acked += r.ok;
        errors += r.non2xx + r.errors;
        ctx.log(`${acked} acknowledged, RSS ${mb(host.rss())} MB`);
      }
      const ingestEnd = samples.length;
      await new Promise((r) => setTimeout(r, settleSec * 1000));
      clearInterval(timer);
      const d = await probe.deliveries();
      const waiting = (d.pending ?? 0) + (d.inflight ?? 0);
      const rss = samples.map((s) => s.rss);
      const maxRss = Math.max(...rss);
      const during = samples.slice(0, ingestEnd);
      const secondHalf = during.filter((s) => s.acked >= total / 2);
      const growthSecondHalf = secondHalf.length ? Math.max(...secondHalf.map((s) => s.rss)) - secondHalf[0]!.rss : 0;
      // RSS saws with garbage collection (tens of MB), so "flat" is judged on the trend, not on two samples:
      // the least-squares slope over the whole ingest, and where RSS settles once the load stops.
      const perTenK = slope(during.map((s) => [s.acked / 10_000, s.rss / 1024 / 1024]));
      const settled = rss[rss.length - 1] ?? 0;
      const flat = perTenK < 2 && settled <= startRss + 20 * 1024 * 1024;

      // The mentor comes back: everything waiting is delivered.
      const sink = await startSinkProcess(mentorPort);
      let drainMs = NaN;
      let delivered = 0;
      try {
        drainMs = await until('backlog drained', () => probe.drained(), 600_000, 250);
        delivered = (await sink.stats()).markers;
      } finally {
        await sink.close();
      }
      const dead = (await probe.deliveries()).dead ?? 0;
      return {
        checks: [
          { label: 'max RSS, 100k deliveries waiting', value: mb(maxRss), unit: 'MB', goal: '< 200 MB', met: maxRss < 200 * 1024 * 1024 },
          {
            label: 'RSS trend per 10k deliveries waiting',
            value: round(perTenK),
            unit: 'MB',
            goal: 'flat (< 2 MB, settles near start)',
            met: flat,
          },
        ],
        measured: {
          deliveries_waiting: waiting,
          acknowledged: acked,
          non2xx_or_errors: errors,
          rss_start_mb: mb(startRss),
          rss_max_mb: mb(maxRss),
          rss_end_of_ingest_mb: mb(during[during.length - 1]?.rss ?? 0),
          rss_after_settle_mb: mb(settled),
          rss_growth_second_half_mb: mb(growthSecondHalf),
          rss_slope_mb_per_10k: round(perTenK),
          drain_after_mentor_up_ms: drainMs,
          delivered_markers: delivered,
          dead,
        },
        notes: [
          'Pending deliveries live in the outbox tables; the dispatcher holds only claimed rows (at most two claim batches) in memory, and with the circuit open it claims none.',
        ],
      };
    } finally {
      await probe.close();
    }
  },
};
