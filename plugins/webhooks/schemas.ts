/**
 * The webhook endpoint's one schema, and the request bodies of its management routes. The types the store
 * and the plugin return are inferred from these, and the OpenAPI docs render them, so the three cannot
 * drift apart.
 */
import { z } from 'zod';
import { isoTime, jsonObject } from '../../lib/http/management/common.js';
import { freeText, safeString } from '../../lib/http/strings.js';
import { endpointHeadersSchema } from './headers.js';
import { eventPatternProblem } from './patterns.js';
import { rateLimitSchema } from './rateLimit.js';

/** An endpoint as the management API shows it: never with a secret. */
export const webhookEndpointSchema = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(z.string()),
  description: z.string().nullable(),
  enabled: z.boolean(),
  // Only events matching every condition are delivered (see filter.ts); null: every subscribed event.
  filter: z.record(z.string(), z.unknown()).nullable(),
  // Why the relay (or an administrator) disabled it.
  disabled_reason: z.string().nullable(),
  // Start of the current run of failed requests.
  failing_since: z.string().nullable(),
  /** Names of the endpoint's own request headers; their values are never shown. */
  headers: z.array(z.string()).describe("Names of the endpoint's own request headers; values are never shown"),
  /** Requests per second to this endpoint, or null for no limit. */
  rate_limit: z.number().int().nullable().describe('Requests per second to this endpoint, or null for no limit'),
  created_at: z.string(),
  updated_at: z.string(),
});
/**
 * What registering an endpoint takes (`F`: the filter's type: unchecked input at the plugin, an accepted
 * `EventFilter` in the store). A patch is any subset of it.
 */
export interface EndpointInput<F = Record<string, unknown>> {
  url: string;
  events: string[];
  description?: string | null;
  enabled?: boolean;
  headers?: Record<string, string> | null;
  rate_limit?: number | null;
  filter?: F | null;
}
/** A change to an endpoint: any subset of {@link EndpointInput}. */
export type EndpointPatch<F = Record<string, unknown>> = Partial<EndpointInput<F>>;

/** A registered endpoint as the management API returns it (no secret). */
export type WebhookEndpoint = z.infer<typeof webhookEndpointSchema>;

/** A signing secret; while a rotation is in progress the previous secret still signs until the time given. */
export const endpointSecretSchema = z.object({
  secret: z.string(),
  /** When the newest previous secret stops signing (null: no rotation in progress). */
  previous_secret_expires_at: z.string().nullable(),
  /** When each previous secret still signing stops, newest first (at most two). */
  previous_secrets_expire_at: z.array(z.string()).describe('When each previous secret still signing stops, newest first (at most two)'),
});
/** An endpoint's secret, and during a rotation the previous ones with their expiry. */
export type EndpointSecret = z.infer<typeof endpointSecretSchema>;

/** Request bodies of the webhook routes; `events` patterns are checked against `known` event types. */
export function webhookSchemas(known: readonly string[]) {
  const events = z
    .array(safeString(128), { error: 'must be an array of event types, "*" or "prefix.*"' })
    .min(1, 'must list at least one event type, "*" or "prefix.*"')
    .max(64)
    .superRefine((list, ctx) => {
      list.forEach((pattern, i) => {
        const problem = eventPatternProblem(pattern, known);
        if (problem) ctx.addIssue({ code: 'custom', path: [i], message: problem });
      });
    })
    .transform((list) => [...new Set(list)]);
  const url = z.string({ error: 'must be an http or https URL' }).min(1).max(2048).pipe(safeString(2048));
  const description = freeText(1000).nullable();
  // The conditions are checked against the catalogue and the subscribed types by `filterProblems`.
  const filter = z
    .record(z.string(), z.unknown(), { error: 'must be an object of "<path>": <condition>, or null' })
    .nullable()
    .describe(
      'Deliver only events matching every condition. Keys: `type`, `deviceid` or `data.<field>`; values: a scalar (equal), an array (any of), or operators `eq`, `ne`, `in`, `nin`, `gt`, `gte`, `lt`, `lte`, `exists`, `prefix`. null removes it.',
    );
  return {
    create: jsonObject({
      url,
      events,
      description: description.optional(),
      enabled: z.boolean().optional(),
      headers: endpointHeadersSchema.optional(),
      rate_limit: rateLimitSchema.optional(),
      filter: filter.optional(),
    }),
    patch: jsonObject({
      url: url.optional(),
      events: events.optional(),
      description: description.optional(),
      enabled: z.boolean().optional(),
      headers: endpointHeadersSchema.optional(),
      rate_limit: rateLimitSchema.optional(),
      filter: filter.optional(),
    }),
  };
}

/** `POST /webhooks/{id}/replay`: a window of stored events, optionally narrowed to some types. */
export function replaySchema(known: readonly string[]) {
  return jsonObject({
    since: isoTime.describe('Events stored at or after this time (ISO-8601)'),
    until: isoTime.optional().describe('Events stored before this time (ISO-8601); now by default'),
    types: z
      .array(safeString(128))
      .min(1)
      .max(64)
      .superRefine((list, ctx) => {
        list.forEach((pattern, i) => {
          const problem = eventPatternProblem(pattern, known);
          if (problem) ctx.addIssue({ code: 'custom', path: [i], message: problem });
        });
      })
      .optional()
      .describe('Only these event types or patterns (within the endpoint subscription)'),
  });
}
