/**
 * The event model. Every stored record becomes one event; its id is stable across retries and replays,
 * so receivers can de-duplicate on it (`Idempotency-Key`, `webhook-id`).
 */
import { randomBytes } from 'node:crypto';

/** Event types of SPEC section 4, plus the management test event. */
export const EVENT_TYPES = [
  'device.registered',
  'metric.submitted',
  'activity.submitted',
  'process.snapshot',
  'alert.submitted',
  'screenshot.submitted',
  'command.updated',
  'command.created',
  'webhook.test',
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export interface RelayEvent<T = Record<string, unknown>> {
  /** Unique, contains no `.` (it is part of the signed content `${id}.${timestamp}.${body}`). */
  id: string;
  type: string;
  deviceid: string | null;
  /** ISO-8601 time the record was stored. */
  timestamp: string;
  data: T;
  /** The inbound request's `X-Request-ID`, propagated on every forward of this event. */
  requestId?: string | null;
}

/**
 * A time-ordered id: 48 bits of milliseconds then 80 random bits, Crockford base32, prefixed `evt_`.
 * Sorting by id approximates creation order, which keeps the outbox index append-mostly.
 */
export function newEventId(now = Date.now()): string {
  return `evt_${ulid(now)}`;
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export function ulid(now = Date.now()): string {
  let time = '';
  let t = now;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = randomBytes(16);
  let rand = '';
  for (let i = 0; i < 16; i++) rand += CROCKFORD[bytes[i]! % 32];
  return time + rand;
}

/** Build an event; `id` and `timestamp` default to a new id and now. */
export function createEvent<T extends Record<string, unknown>>(input: {
  type: string;
  deviceid?: string | null;
  data: T;
  id?: string;
  timestamp?: string | Date;
  requestId?: string | null;
}): RelayEvent<T> {
  const id = input.id ?? newEventId();
  if (id.includes('.')) throw new Error(`event id must not contain "." (got ${JSON.stringify(id)})`);
  const ts = input.timestamp ?? new Date();
  return {
    id,
    type: input.type,
    deviceid: input.deviceid ?? null,
    timestamp: typeof ts === 'string' ? ts : ts.toISOString(),
    data: input.data,
    requestId: input.requestId ?? null,
  };
}

/** Does an endpoint's subscription (`*`, `metric.*`, exact type) match an event type? */
export function matchesEventType(patterns: readonly string[], type: string): boolean {
  return patterns.some((p) => p === '*' || p === type || (p.endsWith('.*') && type.startsWith(p.slice(0, -1))));
}
