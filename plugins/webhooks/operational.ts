/**
 * Operational events: what the relay says about its own webhook endpoints and deliveries. They are events
 * of their own (emitted on the relay's emitter, counted, logged) and are delivered, signed and through the
 * outbox, to endpoints that subscribe to them (`events: ["endpoint.*", "delivery.dead"]`).
 *
 * Two rules keep them from feeding on themselves: an operational event about an endpoint is never delivered
 * to that same endpoint, and a failure while delivering an operational event never causes another one.
 *
 * This file is the shared contract: the event catalogue lists these types (with `operational: true`) and the
 * webhooks plugin emits them.
 */
import { z } from 'zod';

export const endpointEventDataSchema = z.object({
  /** The endpoint the event is about. */
  endpoint_id: z.string(),
  url: z.string(),
  /** Why: `410 Gone`, `failing for 5 days`, `circuit open after 5 failures`, `succeeded again`. */
  reason: z.string(),
});

export const deliveryDeadDataSchema = z.object({
  delivery_id: z.string(),
  target: z.string(),
  /** The webhook endpoint, when the target is `webhooks`. */
  endpoint_id: z.string().nullable(),
  event_id: z.string(),
  event_type: z.string(),
  attempts: z.number().int(),
  last_error: z.string().nullable(),
});

/** The operational event catalogue: each type, what it means, its data schema and an example. */
export const OPERATIONAL_EVENTS = [
  {
    type: 'endpoint.disabled',
    description: 'A webhook endpoint was disabled by the relay (it answered 410, or failed for WEBHOOK_DISABLE_AFTER)',
    data: endpointEventDataSchema,
    example: { endpoint_id: 'wh_01J9Z3QK5V', url: 'https://example.com/hooks', reason: 'answered 410 Gone' },
  },
  {
    type: 'endpoint.failing',
    description: "A webhook endpoint's circuit opened: its deliveries are held back until it recovers",
    data: endpointEventDataSchema,
    example: { endpoint_id: 'wh_01J9Z3QK5V', url: 'https://example.com/hooks', reason: 'circuit open after 5 consecutive failures' },
  },
  {
    type: 'endpoint.recovered',
    description: 'A failing webhook endpoint succeeded again and its circuit closed',
    data: endpointEventDataSchema,
    example: { endpoint_id: 'wh_01J9Z3QK5V', url: 'https://example.com/hooks', reason: 'delivery succeeded' },
  },
  {
    type: 'delivery.dead',
    description: 'A delivery used up its attempts (or failed permanently) and is in the dead-letter queue',
    data: deliveryDeadDataSchema,
    example: {
      delivery_id: 'dlv_01J9Z3R2B8',
      target: 'webhooks',
      endpoint_id: 'wh_01J9Z3QK5V',
      event_id: 'evt_01J9Z3QJ7T',
      event_type: 'alert.submitted',
      attempts: 8,
      last_error: 'HTTP 500',
    },
  },
] as const;

/** The type of an operational event (`endpoint.disabled`, `endpoint.failing`, `endpoint.recovered`, `delivery.dead`). */
export type OperationalEventType = (typeof OPERATIONAL_EVENTS)[number]['type'];
/** Every operational event type, in catalogue order. */
export const OPERATIONAL_EVENT_TYPES: readonly OperationalEventType[] = OPERATIONAL_EVENTS.map((e) => e.type);

/** Is this an operational event type (one the relay raises about itself)? */
export function isOperationalEvent(type: string): boolean {
  return (OPERATIONAL_EVENT_TYPES as readonly string[]).includes(type);
}
