/**
 * Replay and backfill (`POST /api/v1/webhooks/{id}/replay`): a delivery to one endpoint for every stored
 * event in a window that its subscription and filter take and that has no delivery to it yet, whether the
 * event was published before the endpoint existed or while it was disabled. Events that already have a
 * delivery to it (succeeded or dead) are left alone: re-send those with `/deliveries/recover` or `retry`.
 * Each delivery carries the stored event, so its id (`webhook-id`, `Idempotency-Key`) is the original one.
 *
 * The window is read a page at a time (500 events, keyset on the event id), each page in its own short
 * transaction: a large backfill never holds one long transaction or loads the window into memory. Within a
 * page, the endpoint's row is locked (PostgreSQL) so two replays of one endpoint cannot both see "no
 * delivery yet" and queue an event twice; SQLite runs write transactions one at a time anyway. Running the
 * same replay again therefore queues 0.
 */
import { QueryTypes } from 'sequelize';
import type { Database } from '../../lib/db.js';
import { matchesEventType } from '../../lib/events.js';
import type { RelayEvent } from '../../lib/events.js';
import { insertDeliveries } from '../../lib/sql/insertOutbox.js';
import type { NewDelivery } from '../../lib/sql/insertOutbox.js';
import { circuitKey } from '../../lib/target.js';
import { subscribedTypes } from './catalogue.js';
import type { EventCatalogue } from './catalogue.js';
import { isOperationalEvent } from './operational.js';
import { compileFilter } from './filter.js';
import type { EventFilter } from './filter.js';

/** What `POST /api/v1/webhooks/{id}/replay` replays: stored events in `[since, until)` of `types`. */
export interface ReplayWindow {
  /** Events stored at or after this time (epoch ms). */
  since: number;
  /** Events stored before this time (epoch ms); now by default. */
  until?: number;
  /** Only these types or patterns (within the endpoint's subscription). */
  types?: readonly string[];
}

/** What {@link replayEndpoint} needs: the database, the endpoint, its subscription and the window. */
export interface ReplayOptions {
  db: Database;
  /** The plugin's target name, stored on each delivery row. */
  target: string;
  maxAttempts: number;
  catalogue: EventCatalogue;
  endpoint: { id: string; events: readonly string[]; filter: Record<string, unknown> | null };
  window: ReplayWindow;
  pageSize?: number;
}

type EventRow = { id: string; type: string; deviceid: string | null; timestamp: string; data: string; request_id: string | null };

/** Queue the window's missing deliveries to one endpoint; returns how many were queued. */
export async function replayEndpoint(o: ReplayOptions): Promise<number> {
  const { db, endpoint } = o;
  const until = o.window.until ?? Date.now();
  const types = subscribedTypes(o.catalogue, endpoint.events).filter((t) => !o.window.types || matchesEventType(o.window.types, t));
  if (types.length === 0 || until <= o.window.since) return 0;
  const match = endpoint.filter ? compileFilter(endpoint.filter as EventFilter) : () => true;
  const limit = o.pageSize ?? 500;
  const key = circuitKey(o.target, endpoint.id);
  let after = '';
  let queued = 0;
  for (;;) {
    const page = await db.transaction(async (transaction) => {
      if (db.dialect === 'postgres')
        await db.sequelize.query('SELECT id FROM relay_webhooks WHERE id = :id FOR UPDATE', {
          replacements: { id: endpoint.id },
          transaction,
        });
      const rows = await db.sequelize.query<EventRow>(
        `SELECT id, type, deviceid, timestamp, data, request_id FROM relay_events
          WHERE id > :after AND created_at >= :since AND created_at < :until AND type IN (:types)
          ORDER BY id LIMIT :limit`,
        { replacements: { after, since: o.window.since, until, types, limit }, type: QueryTypes.SELECT, transaction },
      );
      if (rows.length === 0) return { rows: 0, last: after, queued: 0 };
      const have = new Set(
        (
          await db.sequelize.query<{ event_id: string }>(
            'SELECT event_id FROM relay_deliveries WHERE event_id IN (:ids) AND target = :target AND endpoint_id = :endpoint',
            { replacements: { ids: rows.map((r) => r.id), target: o.target, endpoint: endpoint.id }, type: QueryTypes.SELECT, transaction },
          )
        ).map((r) => r.event_id),
      );
      const now = Date.now();
      const inserts: NewDelivery[] = [];
      for (const r of rows) {
        if (have.has(r.id)) continue;
        const event: RelayEvent = { id: r.id, type: r.type, deviceid: r.deviceid, timestamp: r.timestamp, data: JSON.parse(r.data) };
        // An operational event about this endpoint never goes to it (no loops).
        if (isOperationalEvent(r.type) && (event.data as { endpoint_id?: unknown }).endpoint_id === endpoint.id) continue;
        if (!match(event)) continue;
        inserts.push({ event, target: o.target, endpointId: endpoint.id, circuitKey: key, maxAttempts: o.maxAttempts, nextAttemptAt: now });
      }
      await insertDeliveries(db.sequelize, inserts, transaction, now);
      return { rows: rows.length, last: rows[rows.length - 1]!.id, queued: inserts.length };
    });
    queued += page.queued;
    after = page.last;
    if (page.rows < limit) return queued;
  }
}
