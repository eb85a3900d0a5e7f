/**
 * Scenario 2, delivery throughput: a backlog of 50,000 metric deliveries drained by the relay to a local
 * sink, against the limit: a raw undici loop posting the same 50,000 bodies, one per request, with the
 * mentor target's concurrency (4), to the same sink. The relay runs in this process through the library
 * (`createRelay` + `mentorTarget`), so both sides pay the same process and the same sink.
 *
 * Trials are interleaved (raw, relay, raw, relay, ..., raw) and the ratio is taken per relay trial against
 * the mean of the raw runs on either side of it, then the median: machine noise moves both sides together.
 */
import { randomUUID } from 'node:crypto';
import { QueryTypes } from 'sequelize';
import { Agent, request } from 'undici';
import { openDatabase } from '../../lib/db.js';
import { createEvent } from '../../lib/events.js';
import type { RelayEvent } from '../../lib/events.js';
import { createRelay } from '../../lib/relay.js';
import { mentorTarget } from '../../plugins/mentor.js';
import { metricSample } from '../lib/load.js';
import { startSinkProcess } from '../lib/sink.js';
import type { SinkHandle } from '../lib/sink.js';
import { median, round } from '../lib/stats.js';
import type { Scenario, ScenarioContext } from './types.js';

const CONCURRENCY = 4;

function metricEvents(n: number): RelayEvent[] {
  const now = new Date().toISOString();
  return Array.from({ length: n }, (_, i) => {
    const deviceid = `bench-${i % 50}`;
    return createEvent({
      type: 'metric.submitted',
      deviceid,
      timestamp: now,
      data: {
        metricid: randomUUID(),
        deviceid,
        timestamp: now,
        ...metricSample(i),
      },
    });
  });
}

interface RelayTrial {
  fillMs: number;
  drainMs: number;
  requests: number;
  rate: number;
}

async function relayTrial(
  ctx: ScenarioContext,
  sink: SinkHandle,
  events: RelayEvent[],
  n: number,
  maxBatchSize?: number,
): Promise<RelayTrial> {
  const target = await ctx.ws.database(`delivery_${n}_${Date.now()}`);
  const db = openDatabase(target.url);
  try {
    const relay = await createRelay({ db, targets: [mentorTarget({ url: sink.url, maxBatchSize })] });
    const t0 = Date.now();
    for (let i = 0; i < events.length; i += 1000) await relay.publish(events.slice(i, i + 1000));
    const fillMs = Date.now() - t0;
    // A backlog this size builds up over minutes of outage, long enough for autovacuum to have analysed the
    // table; a table filled a second ago has no statistics and the planner sorts the whole backlog per claim.
    if (db.dialect === 'postgres') await db.sequelize.query('ANALYZE relay_deliveries; ANALYZE relay_events', { type: QueryTypes.RAW });
    await sink.reset();
    const start = Date.now();
    await relay.start();
    const s = await sink.waitForRecords(events.length, 600_000);
    const drainMs = s.lastAt! - start;
    await relay.stop({ timeoutMs: 5000 });
    return { fillMs, drainMs, requests: s.requests, rate: (events.length / drainMs) * 1000 };
  } finally {
    await db.close();
    await target.drop();
  }
}

async function rawTrial(sink: SinkHandle, bodies: string[]): Promise<number> {
  await sink.reset();
  const agent = new Agent({ connections: 32, keepAliveTimeout: 30_000 });
  let next = 0;
  const url = `${sink.url}/devices/metrics`;
  const start = Date.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        const res = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, dispatcher: agent });
        await res.body.dump();
        if (res.statusCode !== 200) throw new Error(`sink answered ${res.statusCode}`);
      }
    }),
  );
  const ms = Date.now() - start;
  await agent.close();
  return (bodies.length / ms) * 1000;
}

export const delivery: Scenario = {
  name: 'delivery',
  title: 'Delivery throughput',
  async run(ctx) {
    const n = ctx.quick ? 10_000 : 50_000;
    const trials = ctx.quick ? 1 : 3;
    const sink = await startSinkProcess();
    try {
      const events = metricEvents(n);
      const bodies = events.map((e) => JSON.stringify(e.data));
      await rawTrial(sink, bodies.slice(0, 2000)); // warm-up: JIT, sockets
      const raw: number[] = [await rawTrial(sink, bodies)];
      const relay: RelayTrial[] = [];
      const ratios: number[] = [];
      for (let t = 0; t < trials; t++) {
        const r = await relayTrial(ctx, sink, events, n);
        relay.push(r);
        raw.push(await rawTrial(sink, bodies));
        const limit = (raw[t]! + raw[t + 1]!) / 2;
        ratios.push(r.rate / limit);
        ctx.log(
          `trial ${t + 1}: relay ${r.rate.toFixed(0)}/s (${r.requests} requests, fill ${r.fillMs} ms), raw ${limit.toFixed(0)}/s, ratio ${(r.rate / limit).toFixed(2)}`,
        );
      }
      // What batching buys: the same drain with one event per request (smaller backlog, informative only).
      const unbatchedN = ctx.quick ? 2_000 : 10_000;
      const unbatched = await relayTrial(ctx, sink, events.slice(0, unbatchedN), unbatchedN, 1);
      const rawAfter = raw[raw.length - 1]!;
      const ratio = median(ratios);
      return {
        checks: [{ label: 'drain rate / raw undici loop', value: round(ratio), goal: '>= 0.5', met: ratio >= 0.5 }],
        measured: {
          backlog: n,
          trials,
          relay_drain_rps: round(median(relay.map((r) => r.rate)), 0),
          relay_drain_ms: median(relay.map((r) => r.drainMs)),
          relay_requests: relay[0]!.requests,
          raw_undici_rps: round(median(raw), 0),
          raw_concurrency: CONCURRENCY,
          ratio: round(ratio),
          ratios: ratios.map((r) => round(r)).join(', '),
          publish_fill_ms: median(relay.map((r) => r.fillMs)),
          publish_fill_rps: round(median(relay.map((r) => (n / r.fillMs) * 1000)), 0),
          unbatched_backlog: unbatchedN,
          unbatched_drain_rps: round(unbatched.rate, 0),
          unbatched_ratio: round(unbatched.rate / rawAfter),
        },
        notes: [
          "The relay sends the backlog as JSON arrays of up to 100 metrics per request (the mentor target batches when a backlog exists), so it makes about 1/100 of the raw loop's requests; each batch costs a claim UPDATE, an event SELECT, and a flush transaction (attempt rows + status UPDATE).",
          'The unbatched row (maxBatchSize 1) shows the per-delivery bookkeeping cost without that help.',
        ],
      };
    } finally {
      await sink.close();
    }
  },
};
