/**
 * The one multi-row insert helper the outbox and both hosts' stores use: rows round-trip with their types,
 * identifiers are quoted (a `current_user` column is legal on PostgreSQL), and insertIgnore counts only the
 * rows it stored, skipping keys already stored and repeated within one call.
 */
import { QueryTypes } from 'sequelize';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { insertIgnore, insertRows } from '../lib/sql/insertRows.js';
import { createTestDatabase, DIALECTS } from './helpers/db.js';
import type { TestDatabase } from './helpers/db.js';

describe.each(DIALECTS)('insertRows / insertIgnore (%s)', (dialect) => {
  let tdb: TestDatabase;
  beforeEach(async () => {
    tdb = await createTestDatabase(dialect);
    await tdb.db.sequelize.query(
      'CREATE TABLE items (itemid VARCHAR(64) PRIMARY KEY, "current_user" VARCHAR(64), n BIGINT, x DOUBLE PRECISION, ok BOOLEAN)',
    );
  });
  afterEach(() => tdb.drop());

  const all = () =>
    tdb.db.sequelize.query<Record<string, unknown>>('SELECT itemid, "current_user", n, x, ok FROM items ORDER BY itemid', {
      type: QueryTypes.SELECT,
    });
  const columns = ['itemid', 'current_user', 'n', 'x', 'ok'];

  it('inserts every row with its values, and nothing for no rows', async () => {
    await tdb.db.transaction(async (t) => {
      await insertRows(tdb.db.sequelize, 'items', columns, [], t);
      await insertRows(
        tdb.db.sequelize,
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
    const first = await tdb.db.transaction((t) => insertIgnore(tdb.db.sequelize, 'items', 'itemid', columns, [['a', 'u1', 1, 1, true]], t));
    expect(first).toBe(1);
    const again = await tdb.db.transaction((t) =>
      insertIgnore(
        tdb.db.sequelize,
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
});
