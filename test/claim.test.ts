/**
 * The claim statement on its own, on both dialects: which due rows it leases, with its filters and caps
 * (targets, excluded keys, one key only, the cap per target and the room left per held key), that it never
 * leases a row twice, and that a row whose event is gone is still claimed (with no event fields). On
 * PostgreSQL its lists travel as arrays, so keys with quotes, commas and braces are exercised too.
 */
import pg from 'pg';
import { QueryTypes } from 'sequelize';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEvent } from '../lib/events.js';
import { runMigrations } from '../lib/migrate.js';
import { relayMigrations } from '../lib/migrations/index.js';
import { claimDeliveries } from '../lib/sql/claimDeliveries.js';
import type { ClaimedRow, ClaimOptions } from '../lib/sql/claimDeliveries.js';
import { insertOutbox } from '../lib/sql/insertOutbox.js';
import type { NewDelivery } from '../lib/sql/insertOutbox.js';
import { createTestDatabase, DIALECTS } from './helpers/db.js';
import type { TestDatabase } from './helpers/db.js';

const ODD_KEY = `webhooks:{"a,b"}\\'x`;

describe.each(DIALECTS)('claimDeliveries (%s)', (dialect) => {
  let tdb: TestDatabase;
  const now = Date.now();
  beforeEach(async () => {
    tdb = await createTestDatabase(dialect);
    await runMigrations(tdb.db, relayMigrations, 'relay_migrations');
  });
  afterEach(() => tdb.drop());

  /** `n` due deliveries per key, one event each, created in order (older first). */
  async function seed(rows: Array<{ target: string; key: string; n: number; dueIn?: number }>): Promise<void> {
    const deliveries: NewDelivery[] = [];
    let i = 0;
    for (const r of rows)
      for (let k = 0; k < r.n; k++) {
        i += 1;
        const event = createEvent({ type: 'metric.submitted', deviceid: 'dev-1', data: { metricid: `m${i}` } });
        deliveries.push({
          event,
          target: r.target,
          endpointId: null,
          circuitKey: r.key,
          maxAttempts: 3,
          nextAttemptAt: now - 1000 + i + (r.dueIn ?? 0),
        });
      }
    await tdb.db.transaction((t) =>
      insertOutbox(
        tdb.db.sequelize,
        deliveries.map((d) => d.event),
        deliveries,
        t,
        now,
      ),
    );
  }

  const claim = (o: Partial<ClaimOptions>) =>
    claimDeliveries(tdb.db.sequelize, {
      dialect,
      owner: 'me',
      now,
      leaseMs: 60_000,
      limit: 100,
      perKeyCap: {},
      defaultPerKeyCap: 100,
      excludeKeys: [],
      targets: ['mentor', 'webhooks'],
      ...o,
    });
  const perKey = (rows: Array<{ circuit_key: string }>) =>
    rows.reduce<Record<string, number>>((m, r) => ({ ...m, [r.circuit_key]: (m[r.circuit_key] ?? 0) + 1 }), {});

  it('leases due rows oldest first with their event, each row once', async () => {
    await seed([
      { target: 'mentor', key: 'mentor', n: 3 },
      { target: 'mentor', key: 'mentor', n: 2, dueIn: 60_000 },
    ]);
    const first = await claim({});
    expect(first.map((r) => r.event_data && JSON.parse(r.event_data).metricid)).toEqual(['m1', 'm2', 'm3']);
    expect(first.every((r) => r.target === 'mentor' && r.attempts === 0 && r.max_attempts === 3)).toBe(true);
    expect(await claim({})).toEqual([]);
    const leased = await tdb.db.sequelize.query<{ status: string; lease_owner: string | null; n: unknown }>(
      'SELECT status, lease_owner, COUNT(*) AS n FROM relay_deliveries GROUP BY status, lease_owner ORDER BY status',
      { type: QueryTypes.SELECT },
    );
    expect(leased.map((r) => [r.status, r.lease_owner, Number(r.n)])).toEqual([
      ['inflight', 'me', 3],
      ['pending', null, 2],
    ]);
  });

  it('caps rows per key: the room of a held key first, then the cap of its target, then the default', async () => {
    await seed([
      { target: 'webhooks', key: 'webhooks:held', n: 6 },
      { target: 'webhooks', key: ODD_KEY, n: 6 },
      { target: 'mentor', key: 'mentor', n: 6 },
      { target: 'other', key: 'other', n: 6 },
    ]);
    const rows = await claim({
      targets: ['mentor', 'webhooks', 'other'],
      perKeyCap: { webhooks: 4, mentor: 5 },
      heldKeyRoom: { 'webhooks:held': 2 },
      defaultPerKeyCap: 1,
    });
    expect(perKey(rows)).toEqual({ 'webhooks:held': 2, [ODD_KEY]: 4, mentor: 5, other: 1 });
  });

  it('takes only its targets, skips excluded keys, and takes one key alone when asked', async () => {
    await seed([
      { target: 'webhooks', key: ODD_KEY, n: 2 },
      { target: 'webhooks', key: 'webhooks:b', n: 2 },
      { target: 'mentor', key: 'mentor', n: 2 },
    ]);
    expect(perKey(await claim({ targets: ['webhooks'], excludeKeys: [ODD_KEY] }))).toEqual({ 'webhooks:b': 2 });
    expect(await claim({ targets: [] })).toEqual([]);
    expect(perKey(await claim({ onlyKey: ODD_KEY }))).toEqual({ [ODD_KEY]: 2 });
    expect(perKey(await claim({}))).toEqual({ mentor: 2 });
  });

  it('never takes more than its limit, whatever the caps allow', async () => {
    await seed([{ target: 'mentor', key: 'mentor', n: 30 }]);
    expect(await claim({ limit: 7 })).toHaveLength(7);
    expect(await claim({ limit: 100 })).toHaveLength(23);
  });

  // Row locks are PostgreSQL's; SQLite has one writer.
  if (dialect === 'postgres')
    it('skips a row another transaction holds, and takes it once that one is done with it', async () => {
      await seed([{ target: 'mentor', key: 'mentor', n: 3 }]);
      const other = new pg.Client({ connectionString: tdb.url });
      await other.connect();
      try {
        await other.query('BEGIN');
        await other.query(
          "SELECT id FROM relay_deliveries WHERE event_id IN (SELECT id FROM relay_events WHERE data LIKE '%m1%') FOR UPDATE",
        );
        const ids = (rows: ClaimedRow[]) => rows.map((r) => JSON.parse(r.event_data!).metricid);
        expect(ids(await claim({}))).toEqual(['m2', 'm3']);
        // The other transaction took m1 for itself.
        await other.query("UPDATE relay_deliveries SET status = 'inflight', lease_owner = 'other' WHERE status = 'pending'");
        expect(await claim({})).toEqual([]);
        await other.query('COMMIT');
        expect(await claim({})).toEqual([]);
        await tdb.db.sequelize.query("UPDATE relay_deliveries SET status = 'pending', lease_owner = NULL WHERE lease_owner = 'other'");
        expect(ids(await claim({}))).toEqual(['m1']);
      } finally {
        await other.end();
      }
    });

  it('claims a row whose event is gone, with no event fields', async () => {
    await seed([{ target: 'mentor', key: 'mentor', n: 2 }]);
    await tdb.db.sequelize.query("DELETE FROM relay_events WHERE data LIKE '%m1%'");
    const rows = await claim({});
    expect(rows).toHaveLength(2);
    expect(rows[0]!.event_data).toBeNull();
    expect(rows[0]!.event_timestamp).toBeNull();
    expect(JSON.parse(rows[1]!.event_data!).metricid).toBe('m2');
  });
});
