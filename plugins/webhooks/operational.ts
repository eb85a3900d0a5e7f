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
import { describeError } from '../../lib/errors.js';
import { createEvent, matchesEventType } from '../../lib/events.js';
import type { RelayEvent } from '../../lib/events.js';
import type { Logger } from '../../lib/logger.js';
import { observeOperational } from '../../lib/observe.js';
import type { PluginHost } from '../../lib/target.js';

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

/**
 * Endpoints an operational event goes to: enabled ones that name it (`endpoint.*`, `delivery.dead`, an
 * exact type; `*` means every data event and does not include these), never the endpoint it is about.
 */
export function operationalRoute(
  endpoints: Iterable<{ id: string; enabled: boolean; events: readonly string[] }>,
  event: RelayEvent,
): Array<{ endpointId: string }> {
  const about = (event.data as { endpoint_id?: unknown }).endpoint_id;
  const out: Array<{ endpointId: string }> = [];
  for (const e of endpoints) {
    if (!e.enabled || e.id === about) continue;
    if (
      matchesEventType(
        e.events.filter((p) => p !== '*'),
        event.type,
      )
    )
      out.push({ endpointId: e.id });
  }
  return out;
}

/** Only operational events in this request: its failure must not raise another one (no loops). */
export function onlyOperational(events: readonly RelayEvent[]): boolean {
  return events.length > 0 && events.every((e) => isOperationalEvent(e.type));
}

export interface OperationalOptions {
  /** The webhooks target's name: operational events are published to it alone. */
  target: string;
  logger: Logger;
  /** An endpoint's URL (for `endpoint.*` data), or null when it is gone. */
  urlOf(endpointId: string): Promise<string | null>;
}

/**
 * Raises operational events on the relay a webhooks plugin is attached to: count, log, emit, publish.
 * Circuit transitions carry no request, so a circuit that opens is matched to the request that opened it in
 * `outcome` (the dispatcher tells the plugin right after the transition), which says whether it was an
 * operational event's request (then nothing is raised). `endpoint.recovered` follows only an announced
 * `endpoint.failing`.
 */
export class OperationalEvents {
  private host: PluginHost | null = null;
  /** Endpoints whose circuit just opened, waiting for the outcome of the request that opened it. */
  private readonly opened = new Set<string>();
  /** Endpoints with an `endpoint.failing` raised and no `endpoint.recovered` yet. */
  private readonly failing = new Set<string>();

  constructor(private readonly o: OperationalOptions) {}

  attach(host: PluginHost): void {
    this.host = host;
    const prefix = `${this.o.target}:`;
    host.events.on('circuit:open', (t) => {
      if (t.from === 'closed' && t.key.startsWith(prefix)) this.opened.add(t.key.slice(prefix.length));
    });
    host.events.on('circuit:closed', (t) => {
      const id = t.key.slice(prefix.length);
      if (!t.key.startsWith(prefix) || !this.failing.delete(id)) return;
      this.endpoint('endpoint.recovered', id, 'delivery succeeded and its circuit closed');
    });
    host.events.on('delivery:dead', (info) => {
      if (isOperationalEvent(info.eventType)) return;
      info.deliveryIds.forEach((deliveryId, i) => {
        const data: z.infer<typeof deliveryDeadDataSchema> = {
          delivery_id: String(deliveryId),
          target: info.target,
          endpoint_id: info.endpointId,
          event_id: info.eventIds[i]!,
          event_type: info.eventType,
          attempts: info.attempts?.[i] ?? 0,
          last_error: info.error,
        };
        this.raise(
          'delivery.dead',
          data,
          { deliveryId, target: info.target, endpointId: info.endpointId, relatedEventId: data.event_id },
          `delivery ${deliveryId} of ${data.event_type} to ${info.target} is dead`,
        );
      });
    });
  }

  /** Called with every request's outcome for an endpoint, first thing. */
  outcome(endpointId: string, events: readonly RelayEvent[]): void {
    if (!this.opened.delete(endpointId) || onlyOperational(events)) return;
    this.failing.add(endpointId);
    this.endpoint('endpoint.failing', endpointId, 'its circuit opened after consecutive failures');
  }

  /** The relay disabled an endpoint because of a request carrying `events`. */
  disabled(endpointId: string, reason: string, events: readonly RelayEvent[]): void {
    if (onlyOperational(events)) return;
    this.failing.delete(endpointId);
    this.endpoint('endpoint.disabled', endpointId, reason);
  }

  private endpoint(type: 'endpoint.disabled' | 'endpoint.failing' | 'endpoint.recovered', id: string, reason: string): void {
    this.o.urlOf(id).then(
      (url) => this.announce(type, id, url ?? '', reason),
      () => this.announce(type, id, '', reason),
    );
  }

  private announce(type: 'endpoint.disabled' | 'endpoint.failing' | 'endpoint.recovered', id: string, url: string, reason: string): void {
    const data: z.infer<typeof endpointEventDataSchema> = { endpoint_id: id, url, reason };
    this.raise(
      type,
      data,
      { webhookId: id, reason },
      `webhook endpoint ${id}: ${type} (${reason})`,
      type === 'endpoint.recovered' ? 'info' : 'warn',
    );
  }

  private raise(
    type: OperationalEventType,
    data: Record<string, unknown>,
    fields: object,
    message: string,
    level: 'info' | 'warn' = 'warn',
  ): void {
    const host = this.host;
    if (!host) return;
    const event = createEvent({ type, data });
    observeOperational(host, event, fields, message, level);
    host
      .publish(event, { targets: [this.o.target] })
      .catch((err: unknown) =>
        this.o.logger.warn({ eventId: event.id, type, error: describeError(err) }, `could not queue operational event ${type}`),
      );
  }
}
