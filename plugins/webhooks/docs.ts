/** OpenAPI descriptors of the `/webhooks` management routes, from the schemas they validate with. */
import { z } from 'zod';
import type { ManagementRouteDoc } from '../../lib/http/management.js';
import { eventTypeEntrySchema } from './catalogue.js';
import { endpointSecretSchema as secret, replaySchema, webhookEndpointSchema as endpoint, webhookSchemas } from './schemas.js';

const id = { id: 'Webhook endpoint id (`wh_...`)' };
const notFound = { '404': { description: 'Unknown id' } };

export function webhookDocs(eventTypes: readonly string[]): ManagementRouteDoc[] {
  const s = webhookSchemas(eventTypes);
  return [
    {
      method: 'post',
      path: '/webhooks',
      summary: 'Register a webhook endpoint; the answer carries its secret',
      body: s.create,
      responses: {
        '201': { description: 'Created', schema: endpoint.extend(secret.pick({ secret: true }).shape) },
        '422': { description: 'Invalid body, refused URL, or a filter naming an unknown path or operator or a wrongly typed value' },
      },
    },
    {
      method: 'get',
      path: '/webhooks',
      summary: 'List webhook endpoints (never with secrets)',
      responses: { '200': { description: 'Endpoints', schema: z.object({ data: z.array(endpoint) }) } },
    },
    {
      method: 'get',
      path: '/webhooks/:id',
      summary: 'Read one endpoint',
      params: id,
      responses: { '200': { description: 'Endpoint', schema: endpoint }, ...notFound },
    },
    {
      method: 'patch',
      path: '/webhooks/:id',
      summary: 'Change url, events, filter, description, enabled, headers (replaces them all; null removes) or rate_limit',
      params: id,
      body: s.patch,
      responses: {
        '200': { description: 'Endpoint', schema: endpoint },
        '422': { description: 'Invalid body, or the filter does not fit the (new) subscription' },
        ...notFound,
      },
    },
    {
      method: 'delete',
      path: '/webhooks/:id',
      summary: 'Delete an endpoint; its pending deliveries become dead',
      params: id,
      responses: { '204': { description: 'Deleted' }, ...notFound },
    },
    {
      method: 'get',
      path: '/webhooks/:id/secret',
      summary: 'Read the signing secret',
      params: id,
      responses: { '200': { description: 'Secret', schema: secret }, ...notFound },
    },
    {
      method: 'post',
      path: '/webhooks/:id/rotate-secret',
      summary: 'New secret; each previous one keeps signing for its own 24 h, at most 3 secrets at a time',
      params: id,
      responses: {
        '200': { description: 'New secret', schema: secret },
        '409': { description: 'Two previous secrets are still signing: rotate again once the oldest expires' },
        ...notFound,
      },
    },
    {
      method: 'post',
      path: '/webhooks/:id/test',
      summary: 'Queue a webhook.test event to this endpoint only',
      params: id,
      responses: {
        '202': { description: 'Queued', schema: z.object({ event_id: z.string(), type: z.string(), deliveries: z.number().int() }) },
        '409': { description: 'Endpoint disabled' },
        ...notFound,
      },
    },
    {
      method: 'post',
      path: '/webhooks/:id/replay',
      summary:
        'Queue a delivery to this endpoint for every stored event in the window that its subscription and filter take and that has none to it yet (original event ids)',
      params: id,
      body: replaySchema(eventTypes),
      responses: {
        '202': { description: 'Queued; a second identical call queues 0', schema: z.object({ queued: z.number().int() }) },
        '409': { description: 'Endpoint disabled' },
        '422': { description: 'Invalid window or types, or a window starting before what RELAY_RETENTION_DAYS keeps' },
        ...notFound,
      },
    },
    {
      method: 'get',
      path: '/event-types',
      summary: 'The event catalogue: every event type, the JSON Schema of its data, an example, and whether it is operational',
      responses: { '200': { description: 'Event types', schema: z.object({ data: z.array(eventTypeEntrySchema) }) } },
    },
  ];
}
