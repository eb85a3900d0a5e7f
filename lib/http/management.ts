/**
 * The management API (SPEC section 7) as an Express router any app can mount: the delivery log, the
 * dead-letter queue and reconcile, plus the routes of extensions (the webhooks plugin's `/webhooks`), all
 * behind `Authorization: Bearer <admin token>`. Routes carry no prefix; the devices host mounts the router
 * under `/api/v1`. Errors are thrown as `HttpProblem` and rendered by the host's `problemHandler`.
 *
 * ```ts
 * const extensions = [webhooksManagement({ webhooks, relay, logger })];
 * app.use('/api/v1', managementRouter({ relay, adminToken: config.adminToken, logger, extensions }));
 * app.use(problemHandler(logger));
 * ```
 */
import express from 'express';
import type { Router } from 'express';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import type { Relay } from '../relay.js';
import { requireAdminToken } from './auth.js';
import { jsonBody } from './body.js';
import { deliveryRoutes } from './management/deliveries.js';
import type { RouteDoc } from './openapi.js';

/** A route descriptor of the management API; `managementDocs` adds the auth marking and the 401/503 answers. */
export type ManagementRouteDoc = Omit<RouteDoc, 'auth' | 'tags'>;

/**
 * Routes a plugin adds to the management API. They get the same admin authentication and JSON body parsing
 * as the core routes, and their docs are merged into `managementDocs`.
 */
export interface ManagementExtension {
  /** Path prefixes its routes live under (`/webhooks`). Only these are authenticated: keep every route under one. */
  paths: readonly string[];
  /** Routes with their full paths (`/webhooks/:id`), mounted after the authentication. */
  router: Router;
  docs: readonly ManagementRouteDoc[];
}

/** Options of {@link managementRouter}. */
export interface ManagementRouterOptions {
  /** The relay whose delivery log and dead-letter queue are managed. */
  relay: Relay;
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
  /** More routes under the same authentication, e.g. the webhooks plugin's `webhooksManagement(...)`. */
  extensions?: readonly ManagementExtension[];
}

/** Path prefixes the core routes own (under the host's `/api/v1`); see {@link managementPaths} for all. */
export const MANAGEMENT_PATHS: readonly string[] = ['/deliveries', '/reconcile'];

/** Every path prefix the router guards: its extensions' and the core ones. */
export function managementPaths(extensions: readonly ManagementExtension[] = []): string[] {
  return [...extensions.flatMap((e) => e.paths), ...MANAGEMENT_PATHS];
}

/** Build the management router; mount it under `/api/v1` and put `problemHandler` after it. */
export function managementRouter(options: ManagementRouterOptions): Router {
  const logger = options.logger ?? silentLogger;
  const extensions = options.extensions ?? [];
  const router = express.Router();
  // Only the management paths: the host mounts device routes under the same prefix. Authenticate first, so
  // nothing about an unauthenticated request is parsed or processed.
  // The host's own JSON parser must skip these paths (createBaseApp's `parsedByRouters`), or it reads the body first.
  router.use(managementPaths(extensions), requireAdminToken(options.adminToken), jsonBody({ limit: options.bodyLimit ?? '1mb' }));
  for (const extension of extensions) router.use(extension.router);
  router.use(deliveryRoutes({ relay: options.relay, republish: options.republish, logger }));
  return router;
}

export { requireAdminToken } from './auth.js';
export { managementDocs } from './management/docs.js';
