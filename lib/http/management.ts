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
import { EVENT_TYPES } from '../events.js';
import type { Logger } from '../logger.js';
import { silentLogger } from '../logger.js';
import type { Relay } from '../relay.js';
import { jsonBody } from './body.js';
import { deliveryRoutes } from './management/deliveries.js';
import { statsRoutes } from './management/stats.js';
import { authenticate, scopeToPrincipal } from './principal.js';
import type { ConsoleSessions } from './session.js';
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
  /** Event types this extension publishes beyond the relay's own, accepted by `/deliveries?event_type=`. */
  eventTypes?: readonly string[];
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
  /** Event types `/deliveries?event_type=` accepts, with its extensions' (default EVENT_TYPES). */
  eventTypes?: readonly string[];
  /**
   * Console sessions: a live session cookie (plus `X-CSRF-Token` on changes) is accepted instead of the
   * bearer token, and a portal session is held to its one endpoint (`scopeToPrincipal`).
   */
  sessions?: ConsoleSessions;
}

/** Path prefixes the core routes own (under the host's `/api/v1`); see {@link managementPaths} for all. */
export const MANAGEMENT_PATHS: readonly string[] = ['/deliveries', '/reconcile', '/stats'];

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
  router.use(
    managementPaths(extensions),
    authenticate({ adminToken: options.adminToken, sessions: options.sessions }),
    jsonBody({ limit: options.bodyLimit ?? '1mb' }),
  );
  // Unmounted, so it sees the whole path; it only acts on requests authenticated as a portal session.
  router.use(scopeToPrincipal({ deliveryEndpoint: async (id) => (await options.relay.getDelivery(id))?.webhook_id }));
  for (const extension of extensions) router.use(extension.router);
  const eventTypes = [...new Set([...(options.eventTypes ?? EVENT_TYPES), ...extensions.flatMap((e) => e.eventTypes ?? [])])];
  router.use(deliveryRoutes({ relay: options.relay, republish: options.republish, logger, eventTypes }));
  router.use(statsRoutes({ relay: options.relay }));
  return router;
}

export { requireAdminToken } from './auth.js';
export { authenticate, scopeToPrincipal } from './principal.js';
export type { Principal } from './principal.js';
export { ConsoleSessions, SESSION_COOKIE, CSRF_HEADER } from './session.js';
export { managementDocs } from './management/docs.js';
