/**
 * `/webhooks`: register, list, read, change, delete endpoints, read and rotate their secret, send a test
 * event. A secret appears only in the 201 of a registration, `GET /webhooks/{id}/secret` and the rotation
 * answer; lists, reads, errors and logs never carry one.
 */
import express from 'express';
import type { Router } from 'express';
import type { ManagementExtension } from '../../lib/http/management.js';
import { noStore } from '../../lib/http/management/common.js';
import { HttpProblem, notFound, parseOr422, requireJson } from '../../lib/http/problem.js';
import { silentLogger } from '../../lib/logger.js';
import type { Logger } from '../../lib/logger.js';
import type { Relay } from '../../lib/relay.js';
import { webhookDocs } from './docs.js';
import type { WebhooksPlugin } from './index.js';
import { webhookSchemas } from './schemas.js';
import { WebhookUrlError } from './ssrf.js';

/** A refused URL is a validation error on `url`, with the guard's reason. */
async function urlChecked<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof WebhookUrlError)
      throw new HttpProblem(422, `The webhook url is not allowed: ${err.reason}`, [{ path: 'url', message: err.reason }]);
    throw err;
  }
}

/** Options of {@link webhooksManagement}. */
export interface WebhooksManagementOptions {
  /** The plugin registered with `relay`, whose endpoints the routes manage. */
  webhooks: WebhooksPlugin;
  /** Publishes the `webhook.test` events. */
  relay: Relay;
  /** Audit log of endpoint changes (never with secrets). */
  logger?: Logger;
}

/**
 * The `/webhooks` routes as an extension of the management router, which authenticates them:
 * `managementRouter({ ..., extensions: [webhooksManagement({ webhooks, relay, logger })] })`.
 */
export function webhooksManagement({ webhooks, relay, logger = silentLogger }: WebhooksManagementOptions): ManagementExtension {
  return { paths: ['/webhooks'], router: webhookRoutes({ relay, webhooks, logger }), docs: webhookDocs(webhooks.eventTypes) };
}

function webhookRoutes({ relay, webhooks, logger }: { relay: Relay; webhooks: WebhooksPlugin; logger: Logger }): Router {
  const router = express.Router();
  const s = webhookSchemas(webhooks.eventTypes);
  const missing = (id: string) => notFound(`No webhook endpoint ${JSON.stringify(id.slice(0, 80))}`);
  // Ids are ours (`wh_` + ULID); anything else cannot exist, and must not reach the database (a NUL byte
  // makes PostgreSQL fail).
  router.param('id', (_req, _res, next, id: string) => next(/^wh_[0-9A-Za-z]{1,64}$/.test(id) ? undefined : missing(id)));

  router.post('/webhooks', requireJson, async (req, res) => {
    const body = parseOr422(s.create, req.body);
    const { endpoint, secret } = await urlChecked(() => webhooks.create(body));
    noStore(res)
      .status(201)
      .location(`${req.baseUrl}/webhooks/${endpoint.id}`)
      .json({ ...endpoint, secret });
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
    if (!endpoint.enabled)
      throw new HttpProblem(409, `Webhook endpoint ${endpoint.id} is disabled; enable it (PATCH enabled: true) before testing`);
    const event = webhooks.testEvent(endpoint.id);
    const { deliveries } = await relay.publish(event, { targets: [webhooks.name] });
    logger.info({ webhookId: endpoint.id, eventId: event.id }, `test event queued for webhook endpoint ${endpoint.id}`);
    res.status(202).json({ event_id: event.id, type: event.type, deliveries });
  });

  return router;
}
