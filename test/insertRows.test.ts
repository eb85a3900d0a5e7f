/**
 * The one multi-row insert helper the outbox and both hosts' stores use: rows round-trip with their types,
 * identifiers are quoted (a `current_user` column is legal on PostgreSQL), and insertIgnore counts only the
 * rows it stored, skipping keys already stored and repeated within one call.
 */
import { QueryTypes } from 'sequelize';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { insertIgnore, insertRows } from '../lib/sql/insertRows.js';
import { createTestDatabase, DIALECTS } from './helpers/db.js';
import type { TestDatabase, TestDialect } from './helpers/db.js';

const columns = ['itemid', 'current_user', 'n', 'x', 'ok'];

/** A fresh database with an `items` table for each test of the calling describe; `all()` reads it back. */
function itemsTable(dialect: TestDialect) {
  const fx = { tdb: undefined as unknown as TestDatabase };
  beforeEach(async () => {
    fx.tdb = await createTestDatabase(dialect);
    await fx.tdb.db.sequelize.query(
      'CREATE TABLE items (itemid VARCHAR(64) PRIMARY KEY, "current_user" VARCHAR(64), n BIGINT, x DOUBLE PRECISION, ok BOOLEAN)',
    );
  });
  afterEach(() => fx.tdb.drop());
  const all = () =>
    fx.tdb.db.sequelize.query<Record<string, unknown>>('SELECT itemid, "current_user", n, x, ok FROM items ORDER BY itemid', {
      type: QueryTypes.SELECT,
    });
  return { fx, all };
}

describe.each(DIALECTS)('insertRows / insertIgnore (%s)', (dialect) => {
  const { fx, all } = itemsTable(dialect);

  it('inserts every row with its values, and nothing for no rows', async () => {
    await fx.tdb.db.transaction(async (t) => {
      await insertRows(fx.tdb.db.sequelize, 'items', columns, [], t);
      await insertRows(
        fx.tdb.db.sequelize,
        'items',
        columns,
        [
          ['a', 'alice', 1_700_000_000_123, 1.5, true],
          ['b', null, 0, null, false],
        ],
        t,
      );
    });
    const rows = await all();
    expect(rows.map((r) => [r.itemid, r.current_user, Number(r.n), r.x, Boolean(r.ok)])).toEqual([
      ['a', 'alice', 1_700_000_000_123, 1.5, true],
      ['b', null, 0, null, false],
    ]);
  });

  it('insertIgnore stores only new keys and says how many', async () => {
    const first = await fx.tdb.db.transaction((t) =>
      insertIgnore(fx.tdb.db.sequelize, 'items', 'itemid', columns, [['a', 'u1', 1, 1, true]], t),
    );
    expect(first).toBe(1);
    const again = await fx.tdb.db.transaction((t) =>
      insertIgnore(
        fx.tdb.db.sequelize,
        'items',
        'itemid',
        columns,
        [
          ['a', 'changed', 2, 2, false],
          ['b', 'u2', 3, 3, true],
          ['b', 'dup', 4, 4, true],
        ],
        t,
      ),
    );
    expect(again).toBe(1);
    expect((await all()).map((r) => [r.itemid, r.current_user])).toEqual([
      ['a', 'u1'],
      ['b', 'u2'],
    ]);
  });

  it('stores text as it is: quotes, backslashes, JSON text, any script', async () => {
    const texts = [`quote's "double" \\ back`, '{"json":[1,2]}', '٣ 😀', ''];
    await fx.tdb.db.transaction((t) =>
      insertRows(
        fx.tdb.db.sequelize,
        'items',
        columns,
        texts.map((text, i) => [`t${i}`, text, i, i + 0.25, i % 2 === 0]),
        t,
      ),
    );
    const rows = await all();
    expect(rows.map((r) => r.current_user)).toEqual(texts);
    expect(rows.map((r) => [Number(r.n), r.x, Boolean(r.ok)])).toEqual(texts.map((_, i) => [i, i + 0.25, i % 2 === 0]));
  });

  it('inserts more rows than one statement carries, every one of them', async () => {
    const rows = Array.from({ length: 12_001 }, (_, i) => [`r${String(i).padStart(5, '0')}`, null, i, null, null]);
    await fx.tdb.db.transaction((t) => insertRows(fx.tdb.db.sequelize, 'items', columns, rows, t));
    const stored = await all();
    expect(stored).toHaveLength(12_001);
    expect(stored.map((r) => Number(r.n)).reduce((a, b) => a + b, 0)).toBe((12_000 * 12_001) / 2);
  });
});

/** What PostgreSQL does with values SQLite stores as they come (it has no NUL, surrogate or length rules). */
describe('insertRows (postgres): values as a bound parameter has them', () => {
  const { fx, all } = itemsTable('postgres');

  it('stores what a bound parameter would: NUL as \\0, a lone surrogate as U+FFFD, NaN in a float column', async () => {
    await fx.tdb.db.transaction((t) =>
      insertRows(
        fx.tdb.db.sequelize,
        'items',
        columns,
        [
          ['a', 'nul\0here', 1, Number.NaN, true],
          ['b', 'lone \ud800 surrogate', 2, Number.POSITIVE_INFINITY, false],
        ],
        t,
      ),
    );
    expect((await all()).map((r) => [r.current_user, r.x])).toEqual([
      ['nul\\0here', Number.NaN],
      ['lone \ufffd surrogate', Number.POSITIVE_INFINITY],
    ]);
  });

  it('refuses a value its column refuses, storing nothing of the statement', async () => {
    const tooLong = 'x'.repeat(65);
    await expect(
      fx.tdb.db.transaction((t) =>
        insertRows(
          fx.tdb.db.sequelize,
          'items',
          columns,
          [
            ['ok', null, 1, 1, true],
            ['long', tooLong, 2, 2, true],
          ],
          t,
        ),
      ),
    ).rejects.toThrow(/too long/);
    await expect(
      fx.tdb.db.transaction((t) => insertRows(fx.tdb.db.sequelize, 'items', columns, [['frac', null, 1.5, 1, true]], t)),
    ).rejects.toThrow(/bigint/);
    expect(await all()).toEqual([]);
  });
});
