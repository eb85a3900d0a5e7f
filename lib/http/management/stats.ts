/**
 * `GET /stats`: a cheap snapshot for a live overview (the console polls it every few seconds). The queue
 * and dead-letter counts are the ones `/metrics` reports (read through the relay's one-second cache); the
 * totals are counters, so a client gets rates from the difference between two snapshots. `enqueued` is the
 * highest delivery id (a primary-key lookup, never a count of the log).
 */
import express from 'express';
import type { Router } from 'express';
import { QueryTypes } from 'sequelize';
import { z } from 'zod';
import { num } from '../../db.js';
import type { Relay } from '../../relay.js';

const CIRCUIT_STATES = ['closed', 'half-open', 'open'] as const;

export const statsSchema = z.object({
  at: z.string().describe('When the snapshot was taken'),
  queues: z
    .array(z.object({ target: z.string(), pending: z.number().int(), inflight: z.number().int(), dead: z.number().int() }))
    .describe('Deliveries waiting, in flight and dead, per target'),
  totals: z
    .object({
      enqueued: z.number().int().describe('Deliveries ever written to the outbox (the highest delivery id)'),
      succeeded: z.number().int().describe('Deliveries that reached their target, counted by this process since it started'),
      failed_attempts: z.number().int().describe('Failed attempts, counted by this process since it started'),
      dead: z.number().int().describe('Deliveries that became dead, counted by this process since it started'),
    })
    .describe('Counters; rates are the difference between two snapshots'),
  circuits: z
    .array(z.object({ key: z.string(), state: z.enum(CIRCUIT_STATES) }))
    .describe('Each circuit this process has seen (`webhooks:<endpoint id>`, `mentor`)'),
});

async function counterTotal(metric: { get(): Promise<{ values: Array<{ value: number }> }> }): Promise<number> {
  return (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
}

export function statsRoutes({ relay }: { relay: Relay }): Router {
  const router = express.Router();
  router.get('/stats', async (_req, res) => {
    const [counts, [top], succeeded, failed, dead, circuits] = await Promise.all([
      relay.counts(),
      relay.db.sequelize.query<{ n: unknown }>('SELECT MAX(id) AS n FROM relay_deliveries', { type: QueryTypes.SELECT }),
      counterTotal(relay.metrics.success),
      counterTotal(relay.metrics.failure),
      counterTotal(relay.metrics.dead),
      relay.metrics.circuit.get(),
    ]);
    const queues = new Map<string, { target: string; pending: number; inflight: number; dead: number }>();
    for (const t of relay.targets) queues.set(t.name, { target: t.name, pending: 0, inflight: 0, dead: 0 });
    for (const r of counts) {
      const q = queues.get(r.target) ?? { target: r.target, pending: 0, inflight: 0, dead: 0 };
      if (r.status === 'pending' || r.status === 'inflight' || r.status === 'dead') q[r.status] = r.n;
      queues.set(r.target, q);
    }
    res.setHeader('Cache-Control', 'no-store');
    res.json({
      at: new Date().toISOString(),
      queues: [...queues.values()],
      totals: { enqueued: top?.n == null ? 0 : num(top.n), succeeded, failed_attempts: failed, dead },
      circuits: circuits.values
        .map((v) => ({ key: String(v.labels.key), state: CIRCUIT_STATES[v.value] ?? 'closed' }))
        .sort((a, b) => a.key.localeCompare(b.key)),
    } satisfies z.infer<typeof statsSchema>);
  });
  return router;
}
