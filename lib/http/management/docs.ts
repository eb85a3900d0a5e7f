/**
 * OpenAPI descriptors of the management API, built from the schemas the routes validate with. The host
 * passes them to `buildOpenApi` beside its own routes (paths relative to `/api/v1`).
 */
import { z } from 'zod';
import { EVENT_TYPES } from '../../events.js';
import type { RouteDoc } from '../openapi.js';
import { listQuery, reconcileBody, recoverBody } from './deliveries.js';
import { webhookSchemas } from './webhooks.js';

const endpoint = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(z.string()),
  description: z.string().nullable(),
  enabled: z.boolean(),
  disabled_reason: z.string().nullable(),
  failing_since: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
const secret = z.object({ secret: z.string(), previous_secret_expires_at: z.string().nullable() });
const delivery = z.object({
  id: z.number().int(),
  event_id: z.string(),
  event_type: z.string(),
  deviceid: z.string().nullable(),
  target: z.string(),
  webhook_id: z.string().nullable(),
  status: z.enum(['pending', 'inflight', 'succeeded', 'dead']),
  attempts: z.number().int(),
  max_attempts: z.number().int(),
  next_attempt_at: z.string().nullable(),
  last_status_code: z.number().int().nullable(),
  last_error: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  finished_at: z.string().nullable(),
});
const attempt = z.object({
  number: z.number().int(),
  started_at: z.string(),
  duration_ms: z.number().int(),
  status_code: z.number().int().nullable(),
  outcome: z.string(),
  spent: z.boolean(),
  error: z.string().nullable(),
  response_body: z.string().nullable().describe('First 4 KiB of the response'),
});

const id = { id: 'Webhook endpoint id (`wh_...`)' };
const deliveryIdParam = { id: 'Delivery id' };
const notFound = { '404': { description: 'Unknown id' } };
const tags = ['management'];

/** Descriptors of every management route (all need `Authorization: Bearer`). */
export function managementDocs(eventTypes: readonly string[] = EVENT_TYPES): RouteDoc[] {
  const s = webhookSchemas(eventTypes);
  const docs: Array<Omit<RouteDoc, 'auth' | 'tags'>> = [
    { method: 'post', path: '/webhooks', summary: 'Register a webhook endpoint; the answer carries its secret', body: s.create, responses: { '201': { description: 'Created', schema: endpoint.extend(secret.pick({ secret: true }).shape) }, '422': { description: 'Invalid body or refused URL' } } },
    { method: 'get', path: '/webhooks', summary: 'List webhook endpoints (never with secrets)', responses: { '200': { description: 'Endpoints', schema: z.object({ data: z.array(endpoint) }) } } },
    { method: 'get', path: '/webhooks/:id', summary: 'Read one endpoint', params: id, responses: { '200': { description: 'Endpoint', schema: endpoint }, ...notFound } },
    { method: 'patch', path: '/webhooks/:id', summary: 'Change url, events, description or enabled', params: id, body: s.patch, responses: { '200': { description: 'Endpoint', schema: endpoint }, ...notFound } },
    { method: 'delete', path: '/webhooks/:id', summary: 'Delete an endpoint; its pending deliveries become dead', params: id, responses: { '204': { description: 'Deleted' }, ...notFound } },
    { method: 'get', path: '/webhooks/:id/secret', summary: 'Read the signing secret', params: id, responses: { '200': { description: 'Secret', schema: secret }, ...notFound } },
    { method: 'post', path: '/webhooks/:id/rotate-secret', summary: 'New secret; the previous one keeps signing for 24 h', params: id, responses: { '200': { description: 'New secret', schema: secret }, ...notFound } },
    { method: 'post', path: '/webhooks/:id/test', summary: 'Queue a webhook.test event to this endpoint only', params: id, responses: { '202': { description: 'Queued', schema: z.object({ event_id: z.string(), type: z.string(), deliveries: z.number().int() }) }, '409': { description: 'Endpoint disabled' }, ...notFound } },
    { method: 'get', path: '/deliveries', summary: 'The delivery log, newest first, cursor-paginated', query: listQuery, responses: { '200': { description: 'A page', schema: z.object({ data: z.array(delivery), next_cursor: z.string().nullable() }) } } },
    { method: 'get', path: '/deliveries/:id', summary: 'One delivery with every attempt', params: deliveryIdParam, responses: { '200': { description: 'Delivery', schema: delivery.extend({ event: z.unknown(), attempts_log: z.array(attempt) }) }, ...notFound } },
    { method: 'post', path: '/deliveries/:id/retry', summary: 'Re-queue one delivery (not while in flight)', params: deliveryIdParam, responses: { '202': { description: 'Re-queued', schema: z.object({ id: z.number().int(), status: z.literal('pending') }) }, '409': { description: 'In flight' }, ...notFound } },
    { method: 'post', path: '/deliveries/recover', summary: 'Re-queue every dead delivery created in a window', body: recoverBody, responses: { '200': { description: 'Re-queued', schema: z.object({ requeued: z.number().int() }) } } },
    { method: 'post', path: '/reconcile', summary: 'Re-publish stored records to the mentor (idempotent)', body: reconcileBody, responses: { '200': { description: 'Re-published', schema: z.object({ republished: z.number().int() }) }, '503': { description: 'No record store wired' } } },
  ];
  return docs.map((d) => ({ ...d, tags, auth: true, responses: { ...d.responses, '401': { description: 'Missing or wrong bearer token' }, '503': d.responses['503'] ?? { description: 'RELAY_ADMIN_TOKEN not configured' } } }));
}
