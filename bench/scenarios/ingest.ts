/**
 * Scenario 1, ingestion overhead: `POST /api/v1/devices/{id}/metrics` throughput of a devices host that
 * forwards every metric to the mentor AND to one webhook subscriber, divided by the same host with
 * forwarding off (no MENTOR_API_URL, no webhook). Two host processes, each on its own fresh database, the
 * mentor and the webhook receiver are sink processes; autocannon drives the load.
 *
 * Rounds alternate off, on, off, on, ..., off; each "on" round is compared with the mean of the "off"
 * rounds on either side. After an "on" round the harness waits for that host's outbox to drain before the
 * next round, so an "off" round never runs beside the other host's deliveries, and the time the drain took
 * is reported: the dispatcher's work that did not fit inside the round.
 */
import { randomBytes } from 'node:crypto';
import { addWebhook, DbProbe, registerDevices, startDevices, until } from '../lib/hosts.js';
import { cannon } from '../lib/load.js';
import type { CannonResult } from '../lib/load.js';
import { startSinkProcess } from '../lib/sink.js';
import { median, round } from '../lib/stats.js';
import type { Scenario } from './types.js';

const CONNECTIONS = 16;

export const ingest: Scenario = {
  name: 'ingest',
  title: 'Ingestion overhead',
  async run(ctx) {
    const roundSec = ctx.quick ? 5 : 10;
    const pairs = ctx.quick ? 1 : 3;
    const mentorSink = await startSinkProcess();
    const hookSink = await startSinkProcess();
    try {
      const token = randomBytes(16).toString('hex');
      const common = { RELAY_ADMIN_TOKEN: token, WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' };
      const onDb = await ctx.ws.database('ingest_on');
      const offDb = await ctx.ws.database('ingest_off');
      const on = await startDevices(ctx.ws, 'devices-on', { ...common, DATABASE_URL: onDb.url, MENTOR_API_URL: mentorSink.url });
      const off = await startDevices(ctx.ws, 'devices-off', { ...common, DATABASE_URL: offDb.url });
      await addWebhook(on.url, token, `${hookSink.url}/hook`);
      const devicesOn = await registerDevices(on.url, 20);
      const devicesOff = await registerDevices(off.url, 20);
      const probe = new DbProbe(onDb.url);
      try {
        const drain = async () => until('outbox drained', async () => (await probe.backlog()) === 0, 300_000, 50);
        const runOn = async (sec: number) => cannon({ url: on.url, devices: devicesOn, connections: CONNECTIONS, durationSec: sec });
        const runOff = async (sec: number) => cannon({ url: off.url, devices: devicesOff, connections: CONNECTIONS, durationSec: sec });
        // Warm-up: JIT, connection pools, SQLite caches.
        await runOff(2);
        await runOn(2);
        await drain();

        const offs: CannonResult[] = [await runOff(roundSec)];
        const ons: CannonResult[] = [];
        const drains: number[] = [];
        const ratios: number[] = [];
        for (let i = 0; i < pairs; i++) {
          const r = await runOn(roundSec);
          ons.push(r);
          drains.push(await drain());
          offs.push(await runOff(roundSec));
          const limit = (offs[i]!.rps + offs[i + 1]!.rps) / 2;
          ratios.push(r.rps / limit);
          ctx.log(`round ${i + 1}: on ${r.rps.toFixed(0)}/s (p99 ${r.latency.p99} ms), off ${limit.toFixed(0)}/s, ratio ${(r.rps / limit).toFixed(2)}, drain after ${drains[i]} ms`);
        }
        const mentor = await mentorSink.stats();
        const hooks = await hookSink.stats();
        const acknowledged = ons.reduce((a, r) => a + r.ok, 0);
        const ratio = median(ratios);
        const errors = [...ons, ...offs].reduce((a, r) => a + r.non2xx + r.errors, 0);
        return {
          checks: [{ label: 'throughput forwarding on / off', value: round(ratio), goal: '>= 0.85', met: ratio >= 0.85 && errors === 0 }],
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
            mentor_records: mentor.records,
            mentor_requests: mentor.requests,
            webhook_requests: hooks.requests,
            // Warm-up records count too: every acknowledged record reached both receivers.
            acknowledged_on: acknowledged,
          },
          notes: [
            'Both hosts, both sinks, PostgreSQL and autocannon share the 2 cores; the mentor sink receives batches (about 100 metrics per request when a backlog exists), the webhook sink one signed request per event.',
          ],
        };
      } finally {
        await probe.close();
      }
    } finally {
      await mentorSink.close();
      await hookSink.close();
    }
  },
};
