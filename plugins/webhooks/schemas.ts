/**
 * The webhook endpoint's one schema, and the request bodies of its management routes. The types the store
 * and the plugin return are inferred from these, and the OpenAPI docs render them, so the three cannot
 * drift apart.
 */
import { z } from 'zod';
import { jsonObject } from '../../lib/http/management/common.js';
import { freeText, safeString } from '../../lib/http/strings.js';
import { eventPatternProblem } from './patterns.js';

/** An endpoint as the management API shows it: never with a secret. */
export const webhookEndpointSchema = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(z.string()),
  description: z.string().nullable(),
  enabled: z.boolean(),
  // Why the relay (or an administrator) disabled it.
  disabled_reason: z.string().nullable(),
  // Start of the current run of failed requests.
  failing_since: z.string().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});
/** A registered endpoint as the management API returns it (no secret). */
export type WebhookEndpoint = z.infer<typeof webhookEndpointSchema>;

/** A signing secret; while a rotation is in progress the previous secret still signs until the time given. */
export const endpointSecretSchema = z.object({ secret: z.string(), previous_secret_expires_at: z.string().nullable() });
/** An endpoint's secret, and during a rotation the previous one with its expiry. */
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
  return {
    create: jsonObject({ url, events, description: description.optional(), enabled: z.boolean().optional() }),
    patch: jsonObject({
      url: url.optional(),
      events: events.optional(),
      description: description.optional(),
      enabled: z.boolean().optional(),
    }),
  };
}
