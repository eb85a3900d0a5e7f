/**
 * Group commit (`relay.transaction`): concurrent callers share one transaction, an idle caller commits
 * alone, one failing caller never fails the others, callers are answered only after the commit that holds
 * their rows, and `stop()` settles every caller. Batches are observed through `commit:batch` events, not
 * timing. Calls made in one tick gather behind the first one, which an idle lane takes at once.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { QueryTypes } from 'sequelize';
import type { BatchInfo, GroupTransaction } from '../lib/groupCommit.js';
import type { Relay } from '../lib/relay.js';
import { mentorTarget } from '../plugins/mentor.js';
import { DIALECTS } from './helpers/db.js';
import { metricEvent, relayFixture } from './helpers/relay.js';
import type { RelayFixture } from './helpers/relay.js';
import { startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';

describe.each(DIALECTS)('group commit (%s)', (dialect) => {
  let fx: RelayFixture;
  let sink: Sink;
  let relay: Relay;
  let batches: BatchInfo[];

  const count = async (sql: string, replacements: Record<string, unknown> = {}) => {
    const [row] = await fx.tdb.db.sequelize.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${sql}`, {
      replacements,
      type: QueryTypes.SELECT,
    });
    return Number(row!.n);
  };
  /** A caller storing one `items` row and publishing one event for it; resolves with its id. */
  const item = (id: string, n = 1, after?: (tx: GroupTransaction) => void) =>
    relay.transaction(async (tx) => {
      tx.insert('items', [{ id, n }]);
      tx.publish(metricEvent('dev-g', { item: id }));
      after?.(tx);
      return id;
    });
  /** A caller that holds the (one) lane until `release()`: calls made meanwhile gather in the next batch. */
  const holdLane = async (id: string) => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const first = relay.transaction(async (tx) => {
      await held;
      tx.insert('items', [{ id, n: 1 }]);
      tx.publish(metricEvent('dev-g', { item: id }));
    });
    await new Promise((r) => setTimeout(r, 50));
    return { first, release };
  };
  /** Ids of the items the sink received (the mentor target may batch several into one request). */
  const delivered = () =>
    sink.requests.flatMap((r) => {
      const body = JSON.parse(r.body) as unknown;
      return (Array.isArray(body) ? body : [body]).map((d) => (d as { item: string }).item);
    });
  const settle = async (n: number) => {
    await sink.waitFor(1);
    for (let i = 0; i < 200 && delivered().length < n; i++) await new Promise((r) => setTimeout(r, 25));
    await new Promise((r) => setTimeout(r, 200));
  };

  beforeEach(async () => {
    fx = await relayFixture(dialect);
    sink = await startSink();
    await fx.tdb.db.sequelize.query('CREATE TABLE items (id VARCHAR(64) PRIMARY KEY, n INTEGER NOT NULL CHECK (n >= 0))');
    // One lane on PostgreSQL too, so that calls made in one tick land in one batch.
    relay = await fx.make({
      targets: [mentorTarget({ url: sink.url, backoffBaseMs: 20 })],
      dispatcher: { pollIntervalMs: 50 },
      groupCommit: { lanes: 1 },
    });
    batches = [];
    relay.events.on('commit:batch', (b) => batches.push(b));
    await relay.start();
  });
  afterEach(async () => {
    await fx.cleanup();
    await sink.close();
  });

  it('commits an idle caller at once, alone', async () => {
    expect(await item('solo')).toBe('solo');
    expect(batches).toEqual([expect.objectContaining({ callers: 1, rows: 1, events: 1, isolated: false })]);
    await settle(1);
    expect(delivered()).toEqual(['solo']);
  });

  it('gathers concurrent callers into one transaction, each stored and delivered once', async () => {
    const ids = Array.from({ length: 20 }, (_, i) => `c${i}`);
    expect(await Promise.all(ids.map((id) => item(id)))).toEqual(ids);
    // The first call found the lane idle; the other 19 gathered while it committed.
    expect(batches.map((b) => b.callers)).toEqual([1, 19]);
    expect(batches[1]).toMatchObject({ rows: 19, events: 19, rejected: 0 });
    // On PostgreSQL callers that only queue writes are one statement, with no BEGIN/COMMIT.
    expect(batches.map((b) => b.statement)).toEqual([dialect === 'postgres', dialect === 'postgres']);
    expect(await count('items')).toBe(20);
    await settle(20);
    expect(delivered().sort()).toEqual([...ids].sort());
  });

  it('answers a caller only after the commit that holds its rows', async () => {
    // Seen from another connection when the caller is answered: committed, not merely written.
    const seen = await Promise.all(['v0', 'v1', 'v2', 'v3'].map((id) => item(id).then(() => count('items WHERE id = :id', { id }))));
    expect(seen).toEqual([1, 1, 1, 1]);
  });

  it.each([
    ['a duplicate key', () => item('dup')],
    ['a value the database refuses', () => item('neg', -1)],
  ])('isolates a caller whose row fails the batch (%s): the others are stored and delivered once', async (_name, poisoned) => {
    await item('dup');
    const before = batches.length;
    const results = await Promise.allSettled([item('p0'), item('p1'), poisoned(), item('p2')]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(String((results[2] as PromiseRejectedResult).reason)).toMatch(/unique|constraint|check|duplicate/i);
    // The gathered batch rolled back; its members were re-run one by one and the good ones committed.
    // (p0 may have gathered with them: the lane is freed a few microtasks after 'dup' is answered.)
    const after = batches.slice(before);
    expect(after.filter((b) => b.isolated).length).toBeGreaterThanOrEqual(2);
    expect(after.every((b) => !b.isolated || b.callers === 1)).toBe(true);
    expect(after.reduce((n, b) => n + b.callers, 0)).toBe(3);
    expect(await count('items')).toBe(4);
    expect(await count('items WHERE n < 0')).toBe(0);
    expect(await count('relay_events')).toBe(4);
    await settle(4);
    expect(delivered().sort()).toEqual(['dup', 'p0', 'p1', 'p2']);
  });

  it('rejects a caller that throws alone, dropping its queued rows, and commits the rest in the same batch', async () => {
    const invalid = () =>
      item('bad', 1, () => {
        throw new Error('validation failed after queueing');
      });
    const results = await Promise.allSettled([item('w0'), item('w1'), invalid(), item('w2')]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(String((results[2] as PromiseRejectedResult).reason)).toContain('validation failed');
    expect(batches.map((b) => [b.callers, b.rejected, b.isolated])).toEqual([
      [1, 0, false],
      [2, 1, false],
    ]);
    expect(await count('items WHERE id = :id', { id: 'bad' })).toBe(0);
    expect(await count('relay_events')).toBe(3);
  });

  it('undoes a savepoint caller’s direct writes when it fails, without failing its batch', async () => {
    const direct = (id: string, fail: boolean) =>
      relay.transaction(
        async (tx) => {
          await fx.tdb.db.sequelize.query('INSERT INTO items (id, n) VALUES (:id, 1)', {
            replacements: { id },
            transaction: tx.transaction,
          });
          tx.publish(metricEvent('dev-g', { item: id }));
          if (fail) throw new Error('refused after a direct write');
          return id;
        },
        { savepoint: true },
      );
    await item('first');
    const results = await Promise.allSettled([
      item('first-b'),
      direct('s0', false),
      direct('s1', true),
      direct('first', false),
      item('s2'),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'rejected', 'fulfilled']);
    // A duplicate inside a savepoint is rolled back to the savepoint: no re-run of the batch.
    expect(String((results[3] as PromiseRejectedResult).reason)).toMatch(/unique|constraint|duplicate/i);
    expect(batches.some((b) => b.isolated)).toBe(false);
    expect(
      (await fx.tdb.db.sequelize.query<{ id: string }>('SELECT id FROM items ORDER BY id', { type: QueryTypes.SELECT })).map((r) => r.id),
    ).toEqual(['first', 'first-b', 's0', 's2']);
    expect(await count('relay_events')).toBe(4);
  });

  it('writes a rider in its own transaction when idle, and in the next batch, uncounted, while a lane is busy', async () => {
    const group = relay['group'];
    const ride = (id: string, seen?: (t: unknown) => void) =>
      group.ride(async (t) => {
        seen?.(t);
        await fx.tdb.db.sequelize.query('INSERT INTO items (id, n) VALUES (:id, 0)', { replacements: { id }, transaction: t });
      });
    await ride('alone');
    expect(await count("items WHERE id = 'alone'")).toBe(1);
    expect(batches).toEqual([]);

    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let firstT: unknown;
    const first = relay.transaction(async (tx) => {
      firstT = tx.transaction;
      await held;
      tx.insert('items', [{ id: 'first', n: 1 }]);
    });
    await new Promise((r) => setTimeout(r, 50));
    let second: unknown;
    const next = relay.transaction(async (tx) => {
      second = tx.transaction;
      tx.insert('items', [{ id: 'second', n: 1 }]);
    });
    let riderT: unknown;
    expect(group.busy).toBe(true);
    const rider = ride('rider', (t) => (riderT = t));
    release();
    await Promise.all([first, next, rider]);
    // It rode in the batch that was committing when it came (or the next one), not in a transaction of its own.
    expect([firstT, second]).toContain(riderT);
    expect(await count("items WHERE id IN ('first', 'second', 'rider')")).toBe(3);
    expect(batches.map((b) => b.callers)).toEqual([1, 1]);
  });

  it('writes a rider given as statement parts in a busy lane’s one-statement batch (PostgreSQL), or in its transaction (SQLite)', async () => {
    const group = relay['group'];
    const { first, release } = await holdLane('first');
    const next = item('second');
    expect(group.busy).toBe(true);
    let ranAlone = false;
    const rider = group.ride(
      async (t) => {
        ranAlone = true;
        await fx.tdb.db.sequelize.query("INSERT INTO items (id, n) VALUES ('rider', 0)", { transaction: t });
      },
      (p) => [`INSERT INTO items (id, n) VALUES (${p('rider')}, ${p(0)})`],
    );
    release();
    await Promise.all([first, next, rider]);
    // Written with a batch's callers: as parts of its statement on PostgreSQL, through `work` in its
    // transaction on SQLite; never in a write of its own.
    expect(ranAlone).toBe(dialect === 'sqlite');
    expect(batches.map((b) => [b.callers, b.statement])).toEqual([
      [1, dialect === 'postgres'],
      [1, dialect === 'postgres'],
    ]);
    expect(await count("items WHERE id IN ('first', 'second', 'rider')")).toBe(3);
  });

  it('runs a batch in a transaction when a caller reads through tx.transaction, each caller stored once', async () => {
    const { first, release } = await holdLane('seed');
    let runs = 0;
    const counting = (id: string) =>
      relay.transaction(async (tx) => {
        runs += 1;
        tx.insert('items', [{ id, n: 1 }]);
        tx.publish(metricEvent('dev-g', { item: id }));
        return id;
      });
    // Gathered behind `first`, the reader last.
    const calls = [counting('r0'), counting('r1')];
    const reader = relay.transaction(async (tx) => {
      const [row] = await fx.tdb.db.sequelize.query<{ n: number }>("SELECT COUNT(*) AS n FROM items WHERE id = 'seed'", {
        transaction: tx.transaction,
        type: QueryTypes.SELECT,
      });
      tx.insert('items', [{ id: 'reader', n: 1 }]);
      return Number(row!.n);
    });
    release();
    await first;
    expect(await Promise.all(calls)).toEqual(['r0', 'r1']);
    expect(await reader).toBe(1);
    expect(batches.map((b) => [b.callers, b.statement])).toEqual([
      [1, dialect === 'postgres'],
      [3, false],
    ]);
    // On PostgreSQL the second batch began as one statement; the read moved it into a transaction, and the
    // other callers' work ran again there (their rows were not written the first time).
    expect(runs).toBe(dialect === 'postgres' ? 4 : 2);
    expect(await count('items')).toBe(4);
    expect(await count('relay_events')).toBe(3);
    await settle(3);
    expect(delivered().sort()).toEqual(['r0', 'r1', 'seed']);
  });

  it.each([
    // A read makes the batch a transaction on PostgreSQL too; a rider without parts joins only a transaction.
    ['its transaction', true, false],
    // On SQLite the batch is a transaction all the same, and the rider runs as `work`.
    ['its one statement (PostgreSQL)', false, true],
  ])('rejects a rider whose write fails in %s and re-runs the batch’s caller alone, committed', async (_name, reads, asParts) => {
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    const first = relay.transaction(async (tx) => {
      if (reads) void tx.transaction;
      await held;
      tx.insert('items', [{ id: 'first', n: 1 }]);
      tx.publish(metricEvent('dev-g', { item: 'first' }));
    });
    await new Promise((r) => setTimeout(r, 50));
    // Joins the busy lane's batch. The CHECK refuses a negative n.
    const rider = relay['group']
      .ride(
        async (t) => void (await fx.tdb.db.sequelize.query("INSERT INTO items (id, n) VALUES ('bad', -1)", { transaction: t })),
        asParts ? (p) => [`INSERT INTO items (id, n) VALUES (${p('bad')}, ${p(-1)})`] : undefined,
      )
      .then(
        () => 'resolved',
        (err: unknown) => err,
      );
    release();
    await first;
    expect(await rider).toBeInstanceOf(Error);
    expect(await count("items WHERE id = 'first'")).toBe(1);
    expect(await count("items WHERE id = 'bad'")).toBe(0);
    // Even a lone caller is re-run: the rider, not the caller, may have failed the batch.
    expect(batches.map((b) => [b.callers, b.isolated])).toEqual([[1, true]]);
    await settle(1);
    expect(delivered()).toEqual(['first']);
  });

  it('stop() answers every queued caller and refuses new ones', async () => {
    const calls = Array.from({ length: 10 }, (_, i) => item(`s${i}`));
    await relay.stop({ timeoutMs: 1000 });
    expect(await Promise.all(calls)).toHaveLength(10);
    expect(await count('items')).toBe(10);
    await expect(item('late')).rejects.toThrow(/stopping/);
  });
});

describe('group commit lanes (postgres)', () => {
  /** `n` callers made in one tick, each storing one row; the lanes their batches ran on, batch by batch. */
  const burst = async (relay: Relay, n: number) => {
    const batches: BatchInfo[] = [];
    relay.events.on('commit:batch', (b) => batches.push(b));
    const ids = Array.from({ length: n }, (_, i) => `l${i}`);
    await Promise.all(ids.map((id) => relay.transaction(async (tx) => tx.insert('items', [{ id, n: 1 }]))));
    return batches;
  };

  let fx: RelayFixture;
  beforeEach(async () => {
    fx = await relayFixture('postgres');
    await fx.tdb.db.sequelize.query('CREATE TABLE items (id VARCHAR(64) PRIMARY KEY, n INTEGER NOT NULL)');
  });
  afterEach(async () => {
    await fx.cleanup();
  });
  const stored = async () => {
    const [row] = await fx.tdb.db.sequelize.query<{ n: string }>('SELECT COUNT(*) AS n FROM items', { type: QueryTypes.SELECT });
    return Number(row!.n);
  };

  it('keeps a short queue for the busy lane: one batch after it, not a lane each', async () => {
    const relay = await fx.make({ targets: [], groupCommit: { lanes: 3, openLaneAt: 32 } });
    const batches = await burst(relay, 30);
    // The first call found lane 0 idle; 29 waiting callers are fewer than 32, so they waited for its commit.
    expect(batches.map((b) => [b.lane, b.callers])).toEqual([
      [0, 1],
      [0, 29],
    ]);
    expect(await stored()).toBe(30);
  });

  it('opens a further lane once enough callers wait, up to the lane count', async () => {
    const relay = await fx.make({ targets: [], groupCommit: { lanes: 3, openLaneAt: 32 } });
    const batches = await burst(relay, 100);
    // Lane 0 took the first caller; the 32nd waiting caller opened lane 1 for those 32, the next 32 lane 2;
    // the last 35 waited for whichever lane freed first (batches on different lanes commit in any order).
    expect(batches.map((b) => b.callers).sort((a, b) => a - b)).toEqual([1, 32, 32, 35]);
    expect(new Set(batches.map((b) => b.lane))).toEqual(new Set([0, 1, 2]));
    expect(await stored()).toBe(100);
  });

  it('with openLaneAt 1, runs batches side by side for any caller that finds a lane busy', async () => {
    const relay = await fx.make({ targets: [], groupCommit: { lanes: 3, openLaneAt: 1 } });
    const batches = await burst(relay, 30);
    // The first three calls each found an idle lane; the other 27 waited for whichever freed first.
    expect(batches.map((b) => b.callers).sort((a, b) => a - b)).toEqual([1, 1, 1, 27]);
    expect(new Set(batches.map((b) => b.lane))).toEqual(new Set([0, 1, 2]));
    expect(await stored()).toBe(30);
  });
});
