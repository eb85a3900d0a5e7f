/**
 * `/webhooks`: register, list, read, change, delete endpoints, read and rotate their secret, send a test
 * event. A secret appears only in the 201 of a registration, `GET /webhooks/{id}/secret` and the rotation
 * answer; lists, reads, errors and logs never carry one.
 */
import express from 'express';
import type { Router } from 'express';
import { z } from 'zod';
import { WebhookUrlError, eventPatternProblem } from '../../../plugins/webhooks/index.js';
import type { WebhooksPlugin } from '../../../plugins/webhooks/index.js';
import type { Logger } from '../../logger.js';
import type { Relay } from '../../relay.js';
import { HttpProblem, notFound, parseOr422, requireJson } from '../problem.js';
import { jsonObject, noStore } from './common.js';

/** Request bodies of the webhook routes (also rendered into OpenAPI by `managementDocs`). */
export function webhookSchemas(known: readonly string[]) {
  const events = z
    .array(z.string().max(128), { error: 'must be an array of event types, "*" or "prefix.*"' })
    .min(1, 'must list at least one event type, "*" or "prefix.*"')
    .max(64)
    .superRefine((list, ctx) => {
      list.forEach((pattern, i) => {
        const problem = eventPatternProblem(pattern, known);
        if (problem) ctx.addIssue({ code: 'custom', path: [i], message: problem });
      });
    })
    .transform((list) => [...new Set(list)]);
  const url = z.string({ error: 'must be an http or https URL' }).min(1).max(2048);
  const description = z.string().max(1000).nullable();
  return {
    create: jsonObject({ url, events, description: description.optional(), enabled: z.boolean().optional() }),
    patch: jsonObject({ url: url.optional(), events: events.optional(), description: description.optional(), enabled: z.boolean().optional() }),
  };
}

/** A refused URL is a validation error on `url`, with the guard's reason. */
async function urlChecked<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof WebhookUrlError) throw new HttpProblem(422, `The webhook url is not allowed: ${err.reason}`, [{ path: 'url', message: err.reason }]);
    throw err;
  }
}

export function webhookRoutes({ relay, webhooks, logger }: { relay: Relay; webhooks: WebhooksPlugin; logger: Logger }): Router {
  const router = express.Router();
  const s = webhookSchemas(webhooks.eventTypes);
  const missing = (id: string) => notFound(`No webhook endpoint ${JSON.stringify(id.slice(0, 80))}`);
  // Ids are ours (`wh_` + ULID); anything else cannot exist, and must not reach the database (a NUL byte
  // makes PostgreSQL fail).
  router.param('id', (_req, _res, next, id: string) => next(/^wh_[0-9A-Za-z]{1,64}$/.test(id) ? undefined : missing(id)));

  router.post('/webhooks', requireJson, async (req, res) => {
    const body = parseOr422(s.create, req.body);
    const { endpoint, secret } = await urlChecked(() => webhooks.create(body));
    noStore(res).status(201).location(`${req.baseUrl}/webhooks/${endpoint.id}`).json({ ...endpoint, secret });
  });

  router.get('/webhooks', async (_req, res) => {
    res.json({ data: await webhooks.list() });
  });

  router.get('/webhooks/:id', async (req, res) => {
    const endpoint = await webhooks.get(req.params.id);
    if (!endpoint) throw missing(req.params.id);
    res.json(endpoint);
  });

  router.patch('/webhooks/:id', requireJson, async (req, res) => {
    const id = String(req.params.id);
    const patch = parseOr422(s.patch, req.body);
    const endpoint = await urlChecked(() => webhooks.update(id, patch));
    if (!endpoint) throw missing(id);
    res.json(endpoint);
  });

  router.delete('/webhooks/:id', async (req, res) => {
    if (!(await webhooks.remove(req.params.id))) throw missing(req.params.id);
    res.status(204).end();
  });

  router.get('/webhooks/:id/secret', async (req, res) => {
    const secret = await webhooks.secret(req.params.id);
    if (!secret) throw missing(req.params.id);
    noStore(res).json(secret);
  });

  router.post('/webhooks/:id/rotate-secret', async (req, res) => {
    const secret = await webhooks.rotateSecret(req.params.id);
    if (!secret) throw missing(req.params.id);
    noStore(res).json(secret);
  });

  router.post('/webhooks/:id/test', async (req, res) => {
    const endpoint = await webhooks.get(req.params.id);
    if (!endpoint) throw missing(req.params.id);
    if (!endpoint.enabled) throw new HttpProblem(409, `Webhook endpoint ${endpoint.id} is disabled; enable it (PATCH enabled: true) before testing`);
    const event = webhooks.testEvent(endpoint.id);
    const { deliveries } = await relay.publish(event, { targets: [webhooks.name] });
    logger.info({ webhookId: endpoint.id, eventId: event.id }, `test event queued for webhook endpoint ${endpoint.id}`);
    res.status(202).json({ event_id: event.id, type: event.type, deliveries });
  });

  return router;
}
