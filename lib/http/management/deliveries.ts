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
import { HttpProblem, notFound, parseOr422, requireJson } from '../problem.js';
import { safeString } from '../strings.js';
import { checkWindow, isoTime, jsonObject, optionalJson } from './common.js';

const name = safeString(128).min(1);

export const listQuery = z.object({
  status: z.enum(DELIVERY_STATUSES).optional(),
  target: name.optional(),
  webhook_id: name.optional(),
  event_type: name.optional(),
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

/** Delivery ids are positive integers; anything else names no delivery. */
function deliveryId(raw: string): number {
  if (!/^\d{1,15}$/.test(raw)) throw notFound(`Delivery ${raw} not found`);
  return Number(raw);
}

export function deliveryRoutes(o: {
  relay: Relay;
  republish: ((opts: { since?: Date; types?: string[] }) => Promise<number>) | undefined;
  logger: Logger;
}): Router {
  const { relay, logger } = o;
  const router = express.Router();

  router.get('/deliveries', async (req, res) => {
    const q = parseOr422(listQuery, req.query, 'query');
    checkWindow(q.since, q.until);
    const page = await relay.listDeliveries({
      status: q.status,
      target: q.target,
      webhookId: q.webhook_id,
      eventType: q.event_type,
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
