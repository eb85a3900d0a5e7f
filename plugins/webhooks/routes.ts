/**
 * `/webhooks`: register, list, read, change, delete endpoints, read and rotate their secret, send a test
 * event, replay a window of stored events; `/event-types`: the event catalogue. A secret appears only in the 201 of a registration, `GET /webhooks/{id}/secret` and the rotation
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
import { WebhookFilterError } from './filter.js';
import { replayEndpoint } from './replay.js';
import { webhookSchemas, replaySchema } from './schemas.js';
import { WebhookUrlError } from './ssrf.js';
import { RotationConflictError } from './store.js';

/** A refused URL is a validation error on `url`, with the guard's reason; an unusable filter names its paths. */
async function urlChecked<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof WebhookUrlError)
      throw new HttpProblem(422, `The webhook url is not allowed: ${err.reason}`, [{ path: 'url', message: err.reason }]);
    if (err instanceof WebhookFilterError)
      throw new HttpProblem(422, `The webhook filter is not usable: ${err.issues.map((i) => i.path).join(', ')}`, err.issues);
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
  return {
    paths: ['/webhooks', '/event-types'],
    router: webhookRoutes({ relay, webhooks, logger }),
    docs: webhookDocs(webhooks.eventTypes),
    // Every subscribable type, the operational events (endpoint.*, delivery.dead) included: they are delivered through the outbox too.
    eventTypes: webhooks.eventTypes,
  };
}

function webhookRoutes({ relay, webhooks, logger }: { relay: Relay; webhooks: WebhooksPlugin; logger: Logger }): Router {
  const router = express.Router();
  const s = webhookSchemas(webhooks.eventTypes);
  const replay = replaySchema(webhooks.eventTypes);
  const missing = (id: string) => notFound(`Webhook endpoint ${JSON.stringify(id.slice(0, 80))} not found`);
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
    let secret;
    try {
      secret = await webhooks.rotateSecret(req.params.id);
    } catch (err) {
      if (err instanceof RotationConflictError) throw new HttpProblem(409, `Cannot rotate the secret of ${req.params.id}: ${err.message}`);
      throw err;
    }
    if (!secret) throw missing(req.params.id);
    noStore(res).json(secret);
  });

  router.get('/event-types', (_req, res) => {
    res.json({ data: webhooks.catalogue.entries });
  });

  router.post('/webhooks/:id/replay', requireJson, async (req, res) => {
    const id = String(req.params.id);
    const body = parseOr422(replay, req.body);
    const now = Date.now();
    const until = body.until ?? now;
    if (until <= body.since) throw new HttpProblem(422, 'The replay window is empty', [{ path: 'until', message: 'must be after since' }]);
    const days = relay.options.retentionDays;
    if (days !== undefined && body.since < now - days * 86_400_000) {
      const horizon = new Date(now - days * 86_400_000).toISOString();
      throw new HttpProblem(422, `The replay window starts before what is kept (RELAY_RETENTION_DAYS=${days})`, [
        { path: 'since', message: `events older than ${days} days are pruned; use a since at or after ${horizon}` },
      ]);
    }
    const endpoint = await webhooks.get(id);
    if (!endpoint) throw missing(id);
    if (!endpoint.enabled)
      throw new HttpProblem(409, `Webhook endpoint ${endpoint.id} is disabled; enable it (PATCH enabled: true) before replaying`);
    const queued = await replayEndpoint({
      db: relay.db,
      target: webhooks.name,
      maxAttempts: webhooks.retry.maxAttempts,
      catalogue: webhooks.catalogue,
      endpoint,
      window: { since: body.since, until, types: body.types },
    });
    if (queued > 0) relay.wake();
    logger.info(
      { webhookId: id, queued, since: new Date(body.since).toISOString(), until: new Date(until).toISOString(), types: body.types },
      `replay queued ${queued} deliveries to webhook endpoint ${id}`,
    );
    res.status(202).json({ queued });
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
