/**
 * The event model. Every stored record becomes one event; its id is stable across retries and replays,
 * so receivers can de-duplicate on it (`Idempotency-Key`, `webhook-id`).
 */
import { randomFillSync } from 'node:crypto';

/**
 * The device event catalogue (SPEC section 4): every event a devices host publishes for a stored record, the
 * `FORWARD_*` variable that switches its forwarding to the mentor, and what it means. Host configuration,
 * the mentor preset's route map and reconcile all derive their lists from this one.
 */
export const DEVICE_EVENTS = [
  { type: 'device.registered', toggle: 'FORWARD_REGISTRATIONS', description: 'A device registered, or re-registered (upsert)' },
  { type: 'metric.submitted', toggle: 'FORWARD_METRICS', description: 'One metrics sample was stored' },
  { type: 'activity.submitted', toggle: 'FORWARD_ACTIVITIES', description: 'One activity was stored (one event per item)' },
  { type: 'process.snapshot', toggle: 'FORWARD_PROCESSES', description: "The device's process list was replaced (one event per request)" },
  { type: 'alert.submitted', toggle: 'FORWARD_ALERTS', description: 'One alert was stored (one event per item)' },
  { type: 'screenshot.submitted', toggle: 'FORWARD_SCREENSHOTS', description: 'A screenshot (or its metadata) was stored' },
  { type: 'command.updated', toggle: 'FORWARD_COMMAND_RESULTS', description: 'A device reported progress or a result for a command' },
] as const;

/** One entry of {@link DEVICE_EVENTS}. */
export type DeviceEvent = (typeof DEVICE_EVENTS)[number];
/** The event type of a device record (`metric.submitted`, ...). */
export type DeviceEventType = DeviceEvent['type'];

/** The device event types, in catalogue order. */
export const DEVICE_EVENT_TYPES: readonly DeviceEventType[] = DEVICE_EVENTS.map((e) => e.type);

/** Every event type: the device events, the mentor's `command.created`, and the management test event. */
export const EVENT_TYPES: readonly EventType[] = [...DEVICE_EVENT_TYPES, 'command.created', 'webhook.test'];

/** The event types the Raqeem hosts publish; a library user may publish any other type too. */
export type EventType = DeviceEventType | 'command.created' | 'webhook.test';

/** An event: what happened (`type`), to which record (`data`), with an id stable across retries. */
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
  const at = takeRandom();
  let rand = '';
  for (let i = 0; i < 16; i++) rand += CROCKFORD[RANDOM_POOL[at + i]! % 32];
  return time + rand;
}

/**
 * Random bytes for ids, 16 at a time from a pool refilled every 256 ids (as uuid's and Node's `randomUUID`
 * pools do): `randomBytes(16)` per id was 13 us of a devices host's main thread per record (CPU profile at
 * 500 records/s). Ids are unique names, not secrets.
 */
const RANDOM_POOL = Buffer.alloc(16 * 256);
let randomAt = RANDOM_POOL.length;

function takeRandom(): number {
  if (randomAt === RANDOM_POOL.length) {
    randomFillSync(RANDOM_POOL);
    randomAt = 0;
  }
  randomAt += 16;
  return randomAt - 16;
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
