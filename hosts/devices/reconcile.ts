/**
 * Re-publish stored records to the mentor (`POST /reconcile`, `raqeem-relay reconcile`). Each record goes out
 * as a new delivery of its original event: the same event id (stored with the record, `event_id`; for a
 * device or command, its latest event), so `Idempotency-Key` and `webhook-id` hold, carrying the same data
 * and record id. Records stored before event ids were kept get a new id. The mentor stores by record id, so
 * records it already has are answered 200 and not duplicated. Webhook subscribers are not re-sent anything
 * (they use `POST /webhooks/{id}/replay`). Records are read and published a page at a time, each page
 * in its own transaction, so a large window never builds one huge transaction.
 */
import { num } from '../../lib/db.js';
import type { Database } from '../../lib/db.js';
import { createEvent, DEVICE_EVENT_TYPES, matchesEventType } from '../../lib/events.js';
import type { DeviceEventType, RelayEvent } from '../../lib/events.js';
import { HttpProblem } from '../../lib/http/problem.js';
import type { Relay } from '../../lib/relay.js';
import {
  activityRecord,
  alertRecord,
  commandUpdate,
  deviceRecord,
  metricRecord,
  processSnapshot,
  screenshotRecord,
} from './store/records.js';
import { select } from './store/sql.js';
import type { Row } from './store/sql.js';

/** Every device event can be re-published: SOURCES has a reader for each type in the catalogue. */
export const RECONCILE_TYPES: readonly DeviceEventType[] = DEVICE_EVENT_TYPES;

export interface RepublishOptions {
  /** Records stored (or, for devices, last seen; for commands, last updated) at or after this time; all by default. */
  since?: Date | number | string;
  /** Event types or patterns (`metric.*`) to re-publish (all of `RECONCILE_TYPES` by default). */
  types?: readonly string[];
  pageSize?: number;
}

interface Source {
  /** SQL selecting one page: rows after `:after` (by `key`) in the window. */
  sql: string;
  key: string;
  toEvents(db: Database, rows: Row[]): Promise<RelayEvent[]>;
}

const each = (type: string, data: (r: Row) => Record<string, unknown>) => async (_db: Database, rows: Row[]) =>
  rows.map((r) => {
    const d = data(r);
    return createEvent({ id: originalId(r.event_id), type, deviceid: String(d.deviceid), data: d });
  });

/** The id the record was first published with; undefined (a new one) for records older than the column. */
const originalId = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);

const timed = (table: string) => `SELECT * FROM ${table} WHERE timestamp >= :since AND seq > :after ORDER BY seq LIMIT :limit`;

const SOURCES: Record<DeviceEventType, Source> = {
  'device.registered': {
    sql: 'SELECT * FROM devices WHERE last_seen >= :since AND deviceid > :after ORDER BY deviceid LIMIT :limit',
    key: 'deviceid',
    toEvents: each('device.registered', deviceRecord),
  },
  'metric.submitted': { sql: timed('metrics'), key: 'seq', toEvents: each('metric.submitted', metricRecord) },
  'activity.submitted': { sql: timed('activities'), key: 'seq', toEvents: each('activity.submitted', activityRecord) },
  'alert.submitted': { sql: timed('alerts'), key: 'seq', toEvents: each('alert.submitted', alertRecord) },
  'screenshot.submitted': { sql: timed('screenshots'), key: 'seq', toEvents: each('screenshot.submitted', screenshotRecord) },
  'process.snapshot': {
    // The device's current list (possibly empty), re-sent as one snapshot with its original time.
    sql: 'SELECT deviceid, process_snapshot_at, process_event_id FROM devices WHERE process_snapshot_at >= :since AND deviceid > :after ORDER BY deviceid LIMIT :limit',
    key: 'deviceid',
    async toEvents(db, rows) {
      const events: RelayEvent[] = [];
      for (const d of rows) {
        const deviceid = String(d.deviceid);
        const procs = await select(db, 'SELECT * FROM processes WHERE deviceid = :deviceid ORDER BY seq', { deviceid });
        const data = processSnapshot(deviceid, d.process_snapshot_at, procs);
        events.push(createEvent({ id: originalId(d.process_event_id), type: 'process.snapshot', deviceid, data }));
      }
      return events;
    },
  },
  'command.updated': {
    sql: "SELECT * FROM commands WHERE updated_at >= :since AND status <> 'pending' AND seq > :after ORDER BY seq LIMIT :limit",
    key: 'seq',
    toEvents: each('command.updated', commandUpdate),
  },
};

// Bad options are thrown as 422 problems: the management route passes a client's body straight through,
// and an HttpProblem is still an Error with a clear message for the CLI.
function sinceMs(since: RepublishOptions['since']): number {
  if (since === undefined) return 0;
  const ms = since instanceof Date ? since.getTime() : typeof since === 'number' ? since : Date.parse(since);
  if (!Number.isFinite(ms)) {
    throw new HttpProblem(422, 'reconcile "since" must be an ISO-8601 time or epoch milliseconds', [
      { path: 'since', message: `not a time: ${JSON.stringify(since)}` },
    ]);
  }
  return ms;
}

/** Exact types or patterns (`*`, `metric.*`); a pattern that matches no reconcilable type is an error. */
function selectTypes(patterns: readonly string[] | undefined): DeviceEventType[] {
  if (!patterns) return [...RECONCILE_TYPES];
  const errors = patterns
    .map((p, i) => ({ p, i }))
    .filter(({ p }) => !RECONCILE_TYPES.some((t) => matchesEventType([p], t)))
    .map(({ p, i }) => ({
      path: `types[${i}]`,
      message: `cannot reconcile ${JSON.stringify(p)}; known types: ${RECONCILE_TYPES.join(', ')}`,
    }));
  if (errors.length) throw new HttpProblem(422, `cannot reconcile ${errors.map((e) => e.path).join(', ')}`, errors);
  return RECONCILE_TYPES.filter((t) => matchesEventType(patterns, t));
}

/**
 * Re-publish the window's records to the mentor target only. Returns the number of deliveries enqueued
 * (0 in standalone mode, and nothing for types whose `FORWARD_*` toggle is off).
 */
export async function republish(db: Database, relay: Relay, options: RepublishOptions = {}): Promise<number> {
  const since = sinceMs(options.since);
  const types = selectTypes(options.types);
  const limit = options.pageSize ?? 200;
  let total = 0;
  for (const type of types) {
    const source = SOURCES[type];
    let after: unknown = source.key === 'seq' ? -1 : '';
    for (;;) {
      const rows = await select(db, source.sql, { since, after, limit });
      if (rows.length === 0) break;
      const last = rows[rows.length - 1]![source.key];
      after = source.key === 'seq' ? num(last) : last;
      const events = await source.toEvents(db, rows);
      total += await db.transaction(
        async (t) => (await relay.publish(events, { transaction: t, targets: ['mentor'], republish: true })).deliveries,
      );
      if (rows.length < limit) break;
    }
  }
  return total;
}
