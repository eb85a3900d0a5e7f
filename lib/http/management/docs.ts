/**
 * OpenAPI descriptors of the management API, built from the schemas the routes validate with, plus its
 * extensions' own. The host passes them to `buildOpenApi` beside its own routes (paths relative to `/api/v1`).
 */
import { z } from 'zod';
import type { ManagementExtension, ManagementRouteDoc } from '../management.js';
import { problemSchema } from '../openapi.js';
import type { RouteDoc } from '../openapi.js';
import { listQuery, reconcileBody, recoverBody } from './deliveries.js';
import { statsSchema } from './stats.js';

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

const deliveryIdParam = { id: 'Delivery id' };
const notFound = { '404': { description: 'Unknown id' } };
const tags = ['management'];

const CORE_DOCS: ManagementRouteDoc[] = [
  {
    method: 'get',
    path: '/deliveries',
    summary: 'The delivery log, newest first, cursor-paginated',
    query: listQuery,
    responses: {
      '200': { description: 'A page', schema: z.object({ data: z.array(delivery), next_cursor: z.string().nullable() }) },
      '422': {
        description: 'A filter that can match nothing (an unknown target, status or event type): errors[] names it and the allowed values',
        schema: problemSchema,
        contentType: 'application/problem+json',
      },
    },
  },
  {
    method: 'get',
    path: '/deliveries/:id',
    summary: 'One delivery with every attempt',
    params: deliveryIdParam,
    responses: {
      '200': { description: 'Delivery', schema: delivery.extend({ event: z.unknown(), attempts_log: z.array(attempt) }) },
      ...notFound,
    },
  },
  {
    method: 'post',
    path: '/deliveries/:id/retry',
    summary: 'Re-queue one delivery (not while in flight)',
    params: deliveryIdParam,
    responses: {
      '202': { description: 'Re-queued', schema: z.object({ id: z.number().int(), status: z.literal('pending') }) },
      '409': { description: 'In flight' },
      ...notFound,
    },
  },
  {
    method: 'post',
    path: '/deliveries/recover',
    summary: 'Re-queue every dead delivery created in a window',
    body: recoverBody,
    responses: { '200': { description: 'Re-queued', schema: z.object({ requeued: z.number().int() }) } },
  },
  {
    method: 'post',
    path: '/reconcile',
    summary: 'Re-publish stored records to the mentor (idempotent)',
    body: reconcileBody,
    responses: {
      '200': { description: 'Re-published', schema: z.object({ republished: z.number().int() }) },
      '503': { description: 'No record store wired' },
    },
  },
  {
    method: 'get',
    path: '/stats',
    summary: 'Queue depth, dead letters, counters and circuit states (a snapshot for a live overview)',
    responses: { '200': { description: 'Snapshot', schema: statsSchema } },
  },
];

/** Descriptors of every management route, the extensions' first (all need `Authorization: Bearer`). */
export function managementDocs(extensions: readonly ManagementExtension[] = []): RouteDoc[] {
  const docs = [...extensions.flatMap((e) => e.docs), ...CORE_DOCS];
  return docs.map((d) => ({
    ...d,
    tags,
    auth: true,
    responses: {
      ...d.responses,
      '401': { description: 'Missing or wrong bearer token, and no console session cookie' },
      '403': d.responses['403'] ?? {
        description: 'A console session without its X-CSRF-Token on a change, or a portal session outside its endpoint',
      },
      '503': d.responses['503'] ?? { description: 'RELAY_ADMIN_TOKEN not configured' },
    },
  }));
}
