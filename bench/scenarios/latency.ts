/**
 * Scenario 5, latency: at 500 metrics/s, the time from a device's POST to the row stored at the mentor.
 * Both hosts run as processes (signed forwards, as deployed); an open-loop sender (`paced`, not autocannon,
 * whose request set-up time is not its send time) sends numbered records at a fixed rate and keeps each
 * one's send time; afterwards the mentor's own `received_at` (stamped when it stores the row) is read from
 * its database. Same clock: one machine. A run at 100/s first shows the path's floor below saturation.
 *
 * The devices host is the one `buildHosts()` compiles from this tree at the start of every bench run, so
 * its ingest routes go through group commit (`relay.transaction`, hosts/devices/store/ingest.ts): the
 * latency measured includes waiting for the shared commit that holds the record.
 */
import { generateSecret } from '../../lib/signing.js';
import { DbProbe, freePort, registerDevices, startDevices, startMentor, until } from '../lib/hosts.js';
import { cannon, paced } from '../lib/load.js';
import { percentile } from '../lib/stats.js';
import type { Scenario } from './types.js';

export const latency: Scenario = {
  name: 'latency',
  title: 'End-to-end latency at 500/s',
  async run(ctx) {
    const rate = 500;
    const durationSec = ctx.quick ? 10 : 30;
    const secret = generateSecret();
    const devicesDb = await ctx.ws.database('latency_devices');
    const mentorDb = await ctx.ws.database('latency_mentor');
    const [devicesPort, mentorPort] = [await freePort(), await freePort()];
    const mentor = await startMentor(
      ctx.ws,
      'mentor',
      { DATABASE_URL: mentorDb.url, MENTOR_SIGNING_SECRET: secret, DEVICES_API_URL: `http://127.0.0.1:${devicesPort}` },
      mentorPort,
    );
    const devices = await startDevices(
      ctx.ws,
      'devices',
      { DATABASE_URL: devicesDb.url, MENTOR_API_URL: mentor.url, MENTOR_SIGNING_SECRET: secret },
      devicesPort,
    );
    const ids = await registerDevices(devices.url, 20);
    const central = new DbProbe(mentorDb.url);
    const local = new DbProbe(devicesDb.url);
    try {
      await cannon({ url: devices.url, devices: ids, connections: 16, rate, durationSec: 3, markerStart: 1_000_000_000 }); // warm-up
      await until('warm-up delivered', () => local.drained(), 120_000);
      // One numbered run at `r` records/s; latencies from the mentor's received_at of each record.
      const measure = async (r: number, sec: number, markerStart: number) => {
        const load = await paced({ url: devices.url, devices: ids, rate: r, durationSec: sec, markerStart });
        const { sentAt } = load;
        await until('all delivered', () => local.drained(), 300_000);
        const rows = await central.query<{ memory_total: unknown; received_at: unknown }>(
          `SELECT memory_total, received_at FROM metrics WHERE memory_total >= ${markerStart} AND memory_total < ${markerStart + 100_000_000}`,
        );
        const lat: number[] = [];
        for (const row of rows) {
          const sent = sentAt.get(Number(row.memory_total));
          if (sent !== undefined) lat.push(Number(row.received_at) - sent);
        }
        return { load, lat };
      };
      // Below saturation first: the latency floor of the path.
      const light = await measure(100, ctx.quick ? 5 : 10, 500_000_000);
      const { load: heavy, lat } = await measure(rate, durationSec, 0);
      // Where the time goes, from the devices host's delivery log: waiting to be claimed and sent, the
      // mentor request itself, and the batch size it travelled in.
      const attempts = await local.query<{ wait: unknown; dur: unknown; n: unknown }>(
        `SELECT a.started_at - d.created_at AS wait, a.duration_ms AS dur, d.event_type AS n FROM relay_attempts a JOIN relay_deliveries d ON d.id = a.delivery_id WHERE d.event_type = 'metric.submitted'`,
      );
      const waits = attempts.map((a) => Number(a.wait));
      const durs = attempts.map((a) => Number(a.dur));
      const requests = await local.query<{ n: unknown }>(`SELECT COUNT(DISTINCT started_at) AS n FROM relay_attempts`);
      const p50 = percentile(lat, 50);
      const p99 = percentile(lat, 99);
      return {
        checks: [
          { label: 'POST to stored at mentor, p50', value: p50, unit: 'ms', goal: '< 15 ms', met: p50 < 15 },
          { label: 'POST to stored at mentor, p99', value: p99, unit: 'ms', goal: '< 100 ms', met: p99 < 100 },
        ],
        measured: {
          rate_rps: rate,
          duration_sec: durationSec,
          acknowledged: heavy.ok,
          refused_or_failed: heavy.failed,
          stored_at_mentor: lat.length,
          ingest_p50_ms: percentile(heavy.latencies, 50),
          ingest_p99_ms: percentile(heavy.latencies, 99),
          e2e_p50_ms: p50,
          e2e_p90_ms: percentile(lat, 90),
          e2e_p99_ms: p99,
          e2e_max_ms: Math.max(...lat),
          at_100_rps_e2e_p50_ms: percentile(light.lat, 50),
          at_100_rps_e2e_p99_ms: percentile(light.lat, 99),
          at_100_rps_ingest_p50_ms: percentile(light.load.latencies, 50),
          wait_before_send_p50_ms: percentile(waits, 50),
          wait_before_send_p99_ms: percentile(waits, 99),
          mentor_request_p50_ms: percentile(durs, 50),
          mentor_request_p99_ms: percentile(durs, 99),
          records_per_request: Math.round((attempts.length / Math.max(1, Number(requests[0]?.n ?? 1))) * 10) / 10,
        },
        notes: [
          'The path: the ingest (group commit: the record joins the next shared transaction of concurrent requests) commits the record and its delivery, the commit wakes the dispatcher in-process, which claims, batches what came due, signs, and POSTs to the mentor, which stores the batch in one transaction and answers.',
        ],
      };
    } finally {
      await central.close();
      await local.close();
    }
  },
};
