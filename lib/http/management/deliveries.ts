/**
 * `/deliveries` and `/reconcile`: the delivery log (filters, cursor pagination, newest first), one delivery
 * with every attempt, retry one, recover a window of dead deliveries, re-publish stored records.
 */
import express from 'express';
import type { Router } from 'express';
import { z } from 'zod';
import { DELIVERY_STATUSES, decodeCursor } from '../../deliveries.js';
import type { Logger } from '../../logger.js';
import type { Relay } from '../../relay.js';
import { EVENT_TYPES, matchesEventType } from '../../events.js';
import { HttpProblem, notFound, parseOr422, requireJson } from '../problem.js';
import type { ProblemField } from '../problem.js';
import { safeString } from '../strings.js';
import { checkWindow, isoTime, jsonObject, optionalJson } from './common.js';

const name = safeString(128).min(1);

export const listQuery = z.object({
  status: z.enum(DELIVERY_STATUSES, { error: `must be one of ${DELIVERY_STATUSES.join(', ')}` }).optional(),
  target: name.optional().describe("One of this host's targets (mentor, webhooks); 422 naming them otherwise"),
  webhook_id: name.optional(),
  event_type: name.optional().describe('A known event type, or a pattern matching one (metric.*, *); 422 naming the known types otherwise'),
  deviceid: name.optional(),
  since: isoTime.optional(),
  until: isoTime.optional(),
  limit: safeString(8)
    .regex(/^\d{1,4}$/, 'must be a whole number from 1 to 1000')
    .transform(Number)
    .refine((n) => n >= 1 && n <= 1000, 'must be a whole number from 1 to 1000')
    .optional(),
  cursor: safeString(64)
    .refine((c) => decodeCursor(c) !== null, 'is not a cursor from a previous page')
    .optional(),
});

export const recoverBody = jsonObject({
  since: isoTime,
  until: isoTime.optional(),
  target: name.optional(),
  webhook_id: name.optional(),
});

export const reconcileBody = jsonObject({
  since: isoTime.optional(),
  types: z.array(name).min(1).max(64).optional(),
});

const oneOf = (allowed: readonly string[], got: string) => `must be one of ${allowed.join(', ')} (got ${JSON.stringify(got)})`;

/**
 * A filter value that can match nothing is a typo, not an empty page: an empty 200 for `target=mentr` reads
 * exactly like a toggle that is off. `target` must name one of the relay's targets; `event_type` a known
 * type, or a pattern (`metric.*`, `*`) matching one, expanded here to the types it matches.
 */
function knownFilters(
  q: { target?: string; event_type?: string },
  known: { targets: readonly string[]; eventTypes: readonly string[] },
): { eventType: string | string[] | undefined } {
  const errors: ProblemField[] = [];
  if (q.target !== undefined && !known.targets.includes(q.target)) errors.push({ path: 'target', message: oneOf(known.targets, q.target) });
  let eventType: string | string[] | undefined = q.event_type;
  if (q.event_type !== undefined && q.event_type !== '*' && !known.eventTypes.includes(q.event_type)) {
    const matching = q.event_type.endsWith('.*') ? known.eventTypes.filter((t) => matchesEventType([q.event_type!], t)) : [];
    if (matching.length) eventType = matching;
    else errors.push({ path: 'event_type', message: `${oneOf(known.eventTypes, q.event_type)}, or a pattern such as metric.* or *` });
  }
  if (q.event_type === '*') eventType = undefined;
  if (errors.length) throw new HttpProblem(422, `The request query failed validation: ${errors.map((e) => e.path).join(', ')}`, errors);
  return { eventType };
}

/** Delivery ids are positive integers; anything else names no delivery. */
function deliveryId(raw: string): number {
  if (!/^\d{1,15}$/.test(raw)) throw notFound(`Delivery ${raw} not found`);
  return Number(raw);
}

export function deliveryRoutes(o: {
  relay: Relay;
  republish: ((opts: { since?: Date; types?: string[] }) => Promise<number>) | undefined;
  logger: Logger;
  /** Event types the `event_type` filter accepts (EVENT_TYPES by default). */
  eventTypes?: readonly string[];
}): Router {
  const { relay, logger } = o;
  const router = express.Router();

  router.get('/deliveries', async (req, res) => {
    const q = parseOr422(listQuery, req.query, 'query');
    checkWindow(q.since, q.until);
    const { eventType } = knownFilters(q, { targets: relay.targets.map((t) => t.name), eventTypes: o.eventTypes ?? EVENT_TYPES });
    const page = await relay.listDeliveries({
      status: q.status,
      target: q.target,
      webhookId: q.webhook_id,
      eventType,
      deviceid: q.deviceid,
      since: q.since,
      until: q.until,
      limit: q.limit ?? 50,
      cursor: q.cursor,
    });
    res.json(page);
  });

  router.get('/deliveries/:id', async (req, res) => {
    const delivery = await relay.getDelivery(deliveryId(req.params.id));
    if (!delivery) throw notFound(`Delivery ${req.params.id} not found`);
    res.json(delivery);
  });

  router.post('/deliveries/recover', requireJson, async (req, res) => {
    const body = parseOr422(recoverBody, req.body);
    checkWindow(body.since, body.until);
    const requeued = await relay.recoverDead({ since: body.since, until: body.until, target: body.target, webhookId: body.webhook_id });
    logger.info({ ...body, requeued }, `recovered ${requeued} dead deliveries`);
    res.json({ requeued });
  });

  router.post('/deliveries/:id/retry', async (req, res) => {
    const id = deliveryId(req.params.id);
    const r = await relay.retryDelivery(id);
    if (r === 'not_found') throw notFound(`Delivery ${id} not found`);
    if (r === 'inflight') throw new HttpProblem(409, `Delivery ${id} is being sent right now; retry it once the attempt finishes`);
    logger.info({ deliveryId: id }, `delivery ${id} re-queued`);
    res.status(202).json({ id, status: 'pending' });
  });

  router.post('/reconcile', optionalJson, async (req, res) => {
    if (!o.republish) throw new HttpProblem(503, 'Reconcile is not available on this host: no record store is wired to re-publish from');
    const body = parseOr422(reconcileBody, req.body);
    const republished = await o.republish({ since: body.since === undefined ? undefined : new Date(body.since), types: body.types });
    logger.info({ since: body.since, types: body.types, republished }, `reconcile re-published ${republished} events`);
    res.json({ republished });
  });

  return router;
}
