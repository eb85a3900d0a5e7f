/**
 * The management API (SPEC section 7) as an Express router any app can mount: webhook endpoints, the
 * delivery log, the dead-letter queue and reconcile, all behind `Authorization: Bearer <admin token>`.
 * Routes carry no prefix; the devices host mounts the router under `/api/v1`. Errors are thrown as
 * `HttpProblem` and rendered by the host's `problemHandler`.
 *
 * ```ts
 * app.use('/api/v1', managementRouter({ relay, webhooks, adminToken: config.adminToken, logger }));
 * app.use(problemHandler(logger));
 * ```
 */
import express from 'express';
import type { Router } from 'express';
import type { WebhooksPlugin } from '../../plugins/webhooks/index.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import type { Relay } from '../relay.js';
import { requireAdminToken } from './auth.js';
import { deliveryRoutes } from './management/deliveries.js';
import { webhookRoutes } from './management/webhooks.js';

export interface ManagementRouterOptions {
  /** The relay whose delivery log and dead-letter queue are managed (and which publishes test events). */
  relay: Relay;
  /** The webhooks plugin registered with `relay`; without it the `/webhooks` routes are not mounted. */
  webhooks?: WebhooksPlugin;
  /** `RELAY_ADMIN_TOKEN`; when unset every route answers 503 saying how to enable the API. */
  adminToken: string | undefined;
  /**
   * Re-publish stored records created since `since` (all when absent), optionally only of `types`, to the
   * mentor; returns how many events were published. Without it `POST /reconcile` answers 503.
   */
  republish?: (opts: { since?: Date; types?: string[] }) => Promise<number>;
  /** Audit log of management actions (never with secrets or tokens). */
  logger?: Logger;
  /** JSON body limit when the host has not parsed the body already (default 1 MiB). */
  bodyLimit?: number | string;
}

/** Path prefixes the router owns (under the host's `/api/v1`). */
export const MANAGEMENT_PATHS = ['/webhooks', '/deliveries', '/reconcile'];

/** Build the management router; mount it under `/api/v1` and put `problemHandler` after it. */
export function managementRouter(options: ManagementRouterOptions): Router {
  const logger = options.logger ?? silentLogger;
  const router = express.Router();
  // Only the management paths: the host mounts device routes under the same prefix. Authenticate first, so
  // nothing about an unauthenticated request is parsed or processed.
  router.use(MANAGEMENT_PATHS, requireAdminToken(options.adminToken), express.json({ limit: options.bodyLimit ?? '1mb' }));
  if (options.webhooks) router.use(webhookRoutes({ relay: options.relay, webhooks: options.webhooks, logger }));
  router.use(deliveryRoutes({ relay: options.relay, republish: options.republish, logger }));
  return router;
}

export { requireAdminToken } from './auth.js';
export { managementDocs } from './management/docs.js';
