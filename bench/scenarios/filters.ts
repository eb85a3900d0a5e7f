/**
 * Scenario `filters` (issue 13): what endpoint filters cost at publish. Two databases, each with 100 webhook
 * endpoints subscribed to `metric.submitted`: on one they have no filter, on the other each holds a
 * three-condition filter (`deviceid` prefix, `data.cpu_usage` range, `data.memory_total` exists) that every
 * event passes, so both write the same delivery rows and the difference is the filters' evaluation alone
 * (a filter that refuses events makes publishing cheaper, not dearer: fewer rows). The relay runs in this
 * process through the library and is not started, so nothing but publishing is measured.
 *
 * Trials alternate plain and filtered (both tables grow alike; which goes first alternates too, since the
 * first of a pair leaves its disk writeback to the second) and the ratio is filtered rate / plain rate per
 * pair, then the median. Beside it, informative: routing alone (the in-memory fan-out, no database) in
 * nanoseconds per event for both, which is where the filters run.
 */
import { randomUUID } from 'node:crypto';
import { DEVICES_CATALOGUE } from '../../hosts/devices/catalogue.js';
import { openDatabase } from '../../lib/db.js';
import type { Database } from '../../lib/db.js';
import { createEvent } from '../../lib/events.js';
import type { RelayEvent } from '../../lib/events.js';
import { createRelay } from '../../lib/relay.js';
import type { Relay } from '../../lib/relay.js';
import { webhooksTarget } from '../../plugins/webhooks/index.js';
import type { WebhooksPlugin } from '../../plugins/webhooks/index.js';
import { metricSample } from '../lib/load.js';
import { median, round } from '../lib/stats.js';
import type { Scenario, ScenarioContext } from './types.js';

const ENDPOINTS = 100;
/** Events per publish call (each fans out to 100 delivery rows). */
const PER_PUBLISH = 20;
const FILTER = { deviceid: { prefix: 'bench-' }, 'data.cpu_usage': { gte: 0, lte: 100 }, 'data.memory_total': { exists: true } };

function metricEvents(n: number): RelayEvent[] {
  const now = new Date().toISOString();
  return Array.from({ length: n }, (_, i) => {
    const deviceid = `bench-${i % 50}`;
    return createEvent({
      type: 'metric.submitted',
      deviceid,
      timestamp: now,
      data: { metricid: randomUUID(), deviceid, timestamp: now, ...metricSample(i) },
    });
  });
}

interface Setup {
  db: Database;
  relay: Relay;
  webhooks: WebhooksPlugin;
  drop(): Promise<void>;
}

async function setup(ctx: ScenarioContext, name: string, filtered: boolean): Promise<Setup> {
  const target = await ctx.ws.database(name);
  const db = openDatabase(target.url);
  const webhooks = webhooksTarget({ db, allowPrivateNetworks: true, catalogue: DEVICES_CATALOGUE });
  const relay = await createRelay({ db, targets: [webhooks] });
  for (let i = 0; i < ENDPOINTS; i++)
    await webhooks.create({ url: `http://127.0.0.1:9/hook-${i}`, events: ['metric.submitted'], filter: filtered ? FILTER : null });
  return {
    db,
    relay,
    webhooks,
    async drop() {
      await relay.stop({ timeoutMs: 1000 });
      await db.close();
      await target.drop();
    },
  };
}

/** Events per second published (in calls of PER_PUBLISH events, each its own transaction). */
async function publishTrial(s: Setup, events: RelayEvent[]): Promise<number> {
  const fresh = events.map((e) => ({ ...e, id: `${e.id}${randomUUID().slice(0, 8)}` }));
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < fresh.length; i += PER_PUBLISH) {
    const r = await s.relay.publish(fresh.slice(i, i + PER_PUBLISH));
    if (r.deliveries !== Math.min(PER_PUBLISH, fresh.length - i) * ENDPOINTS)
      throw new Error(`expected every event to fan out to ${ENDPOINTS}`);
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return (fresh.length / ms) * 1000;
}

/** Nanoseconds per event for the plugin's routing alone (the snapshot is warm: no query). */
async function routeNs(s: Setup, events: RelayEvent[]): Promise<number> {
  await s.webhooks.route(events[0]!, { transaction: undefined });
  const t0 = process.hrtime.bigint();
  let n = 0;
  for (const e of events) n += (await s.webhooks.route(e, { transaction: undefined })).length;
  const ns = Number(process.hrtime.bigint() - t0);
  if (n !== events.length * ENDPOINTS) throw new Error('routing lost endpoints');
  return ns / events.length;
}

export const filters: Scenario = {
  name: 'filters',
  title: 'Publish with 100 filtered endpoints',
  async run(ctx) {
    const n = ctx.quick ? 500 : 2000;
    const trials = ctx.quick ? 2 : 6;
    const events = metricEvents(n);
    const plain = await setup(ctx, 'filters_plain', false);
    const filtered = await setup(ctx, 'filters_filtered', true);
    try {
      // Warm-up: JIT, connections, snapshots.
      await publishTrial(plain, events.slice(0, 100));
      await publishTrial(filtered, events.slice(0, 100));
      const rates = { plain: [] as number[], filtered: [] as number[] };
      const ratios: number[] = [];
      for (let t = 0; t < trials; t++) {
        // Alternate which side goes first: the first trial of a pair leaves the second its writeback to pay.
        let a: number;
        let b: number;
        if (t % 2 === 0) {
          a = await publishTrial(plain, events);
          b = await publishTrial(filtered, events);
        } else {
          b = await publishTrial(filtered, events);
          a = await publishTrial(plain, events);
        }
        rates.plain.push(a);
        rates.filtered.push(b);
        ratios.push(b / a);
        ctx.log(`trial ${t + 1}: plain ${a.toFixed(0)} events/s, filtered ${b.toFixed(0)} events/s, ratio ${(b / a).toFixed(3)}`);
      }
      const routePlain = median([await routeNs(plain, events), await routeNs(plain, events), await routeNs(plain, events)]);
      const routeFiltered = median([await routeNs(filtered, events), await routeNs(filtered, events), await routeNs(filtered, events)]);
      const ratio = median(ratios);
      return {
        checks: [{ label: 'publish rate, filtered / unfiltered endpoints', value: round(ratio), goal: '>= 0.8', met: ratio >= 0.8 }],
        measured: {
          endpoints: ENDPOINTS,
          events_per_trial: n,
          events_per_publish: PER_PUBLISH,
          trials,
          plain_publish_eps: round(median(rates.plain), 0),
          filtered_publish_eps: round(median(rates.filtered), 0),
          ratio: round(ratio, 3),
          ratios: ratios.map((r) => round(r, 3)).join(', '),
          route_plain_ns_per_event: round(routePlain, 0),
          route_filtered_ns_per_event: round(routeFiltered, 0),
        },
        notes: [
          `Each event fans out to ${ENDPOINTS} delivery rows on both sides, so publishing is dominated by writing them; the filters (compiled once per endpoint list; each path read once per event, conditions evaluated as data) add the difference between the two route_*_ns_per_event numbers, i.e. ${ENDPOINTS} three-condition checks per event.`,
        ],
      };
    } finally {
      await plain.drop();
      await filtered.drop();
    }
  },
};
