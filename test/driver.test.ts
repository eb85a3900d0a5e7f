/**
 * runSql, the hot statements' way to the driver: callers must not tell it from `sequelize.query`. Its errors
 * are sequelize's (same class, same message) for the same failing statement, it binds `$n` by number on
 * both dialects, it refuses a finished transaction, and without one it gives its connection back.
 */
import { BaseError, QueryTypes } from 'sequelize';
import type { Transaction } from 'sequelize';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../lib/db.js';
import { runSql } from '../lib/sql/driver.js';
import { createPgDatabase, createTestDatabase, DIALECTS } from './helpers/db.js';
import type { TestDatabase } from './helpers/db.js';

describe.each(DIALECTS)('runSql (%s)', (dialect) => {
  let tdb: TestDatabase;
  beforeEach(async () => {
    tdb = await createTestDatabase(dialect);
    await tdb.db.sequelize.query('CREATE TABLE items (itemid VARCHAR(64) PRIMARY KEY, n BIGINT NOT NULL, note TEXT)');
    await tdb.db.sequelize.query("INSERT INTO items (itemid, n) VALUES ('a', 1)");
  });
  afterEach(() => tdb.drop());

  const stored = async () =>
    (
      await tdb.db.sequelize.query<{ itemid: string; n: unknown; note: string | null }>(
        'SELECT itemid, n, note FROM items ORDER BY itemid',
        {
          type: QueryTypes.SELECT,
        },
      )
    ).map((r) => `${r.itemid} ${Number(r.n)} ${r.note}`);

  /** The error `run` rejects with. */
  const failure = async (run: () => Promise<unknown>): Promise<Error> => {
    try {
      await run();
    } catch (err) {
      return err as Error;
    }
    throw new Error('expected the statement to fail');
  };

  it.each([
    ['a duplicate key', "INSERT INTO items (itemid, n) VALUES ('a', 2)"],
    ['a NOT NULL column left empty', "INSERT INTO items (itemid) VALUES ('b')"],
    ['a syntax error', 'INSERT INTO items VALUE'],
  ])('fails %s with the error sequelize.query throws', async (_what, sql) => {
    const theirs = await failure(() => tdb.db.transaction((t) => tdb.db.sequelize.query(sql, { transaction: t })));
    const ours = await failure(() => tdb.db.transaction((t) => runSql(tdb.db.sequelize, sql, [], t)));
    const alone = await failure(() => runSql(tdb.db.sequelize, sql, [], undefined));
    for (const err of [ours, alone]) {
      expect(err).toBeInstanceOf(BaseError);
      expect(err.constructor).toBe(theirs.constructor);
      expect(err.message).toBe(theirs.message);
    }
    expect(await stored()).toEqual(['a 1 null']);
  });

  it('binds $n by number, however often and in whatever order they appear, and returns the rows', async () => {
    const rows = await runSql(tdb.db.sequelize, 'SELECT $2 AS b, $1 AS a, $1 AS again', ['first', 'second'], undefined);
    expect(rows).toEqual([{ b: 'second', a: 'first', again: 'first' }]);
    const returned = await tdb.db.transaction((t) =>
      runSql(
        tdb.db.sequelize,
        'INSERT INTO items (itemid, n, note) VALUES ($2, $1, $3), ($4, $1, NULL) RETURNING itemid',
        [7, 'b', 'x', 'c'],
        t,
      ),
    );
    expect(returned.map((r) => r.itemid).sort()).toEqual(['b', 'c']);
    expect(await stored()).toEqual(['a 1 null', 'b 7 x', 'c 7 null']);
  });

  it('stores a string with a NUL character as sequelize.query does', async () => {
    const note = 'before\0after';
    await tdb.db.sequelize.query('INSERT INTO items (itemid, n, note) VALUES ($1, 1, $2)', { bind: ['theirs', note] });
    await runSql(tdb.db.sequelize, 'INSERT INTO items (itemid, n, note) VALUES ($1, 1, $2)', ['ours', note], undefined);
    const [theirs, ours] = await tdb.db.sequelize.query<{ note: string }>(
      "SELECT note FROM items WHERE itemid IN ('theirs', 'ours') ORDER BY itemid DESC",
      { type: QueryTypes.SELECT },
    );
    expect(ours!.note).toBe(theirs!.note);
  });

  it('refuses a transaction that has finished, writing nothing', async () => {
    const t = await tdb.db.sequelize.transaction();
    await t.commit();
    await expect(runSql(tdb.db.sequelize, "INSERT INTO items (itemid, n) VALUES ('b', 2)", [], t)).rejects.toThrow(
      /commit has been called/,
    );
    expect(await stored()).toEqual(['a 1 null']);
  });

  it('without a transaction, autocommits and gives its connection back (more statements than the pool holds)', async () => {
    for (let i = 0; i < 25; i++) await runSql(tdb.db.sequelize, 'UPDATE items SET n = n + 1', [], undefined);
    await expect(runSql(tdb.db.sequelize, 'SELECT nope FROM items', [], undefined)).rejects.toBeInstanceOf(BaseError);
    for (let i = 0; i < 25; i++) await runSql(tdb.db.sequelize, 'UPDATE items SET n = n + 1', [], undefined);
    expect(await stored()).toEqual(['a 51 null']);
  });

  // SQLite keeps each text's statement prepared per connection (`allPrepared` in lib/db.ts).
  it('runs the same text many times, in and out of transactions, and again after it failed', async () => {
    const each = dialect === 'sqlite' ? 'json_each($1)' : 'json_array_elements_text($1::json) AS value';
    const insert = `INSERT INTO items (itemid, n) SELECT value, 0 FROM ${each} RETURNING itemid`;
    for (let i = 0; i < 5; i++) {
      const rows = await runSql<{ itemid: string }>(tdb.db.sequelize, insert, [JSON.stringify([`x${i}`])], undefined);
      expect(rows.map((r) => r.itemid)).toEqual([`x${i}`]);
    }
    // The same text failing on a kept statement (a duplicate key), then succeeding with other values.
    await expect(runSql(tdb.db.sequelize, insert, [JSON.stringify(['x1'])], undefined)).rejects.toBeInstanceOf(BaseError);
    await tdb.db.transaction(async (t) => {
      for (let i = 5; i < 8; i++) await runSql(tdb.db.sequelize, insert, [JSON.stringify([`x${i}`])], t);
    });
    expect((await stored()).length).toBe(9);
  });

  it('stays correct with more distinct texts than a connection keeps prepared', async () => {
    for (let round = 0; round < 2; round++)
      for (let i = 0; i < 80; i++) {
        const [row] = await runSql<{ v: unknown }>(tdb.db.sequelize, `SELECT ${i} + $1 AS v`, [round], undefined);
        expect(Number(row!.v)).toBe(i + round);
      }
  });

  it('with prepare: true, runs a fixed text as one statement prepared by name per PostgreSQL connection, usable after it failed', async () => {
    const insert = 'INSERT INTO items (itemid, n) VALUES ($1, $2) RETURNING itemid';
    const prepared = () =>
      tdb.db.sequelize.query<{ name: string; statement: string }>(
        "SELECT name, statement FROM pg_prepared_statements WHERE name LIKE 'raqeem_relay_%'",
        { type: QueryTypes.SELECT, transaction: t },
      );
    let t: Transaction | undefined;
    await tdb.db.transaction(async (tx) => {
      t = tx;
      for (let i = 0; i < 3; i++) {
        const rows = await runSql<{ itemid: string }>(tdb.db.sequelize, insert, [`p${i}`, i], tx, { prepare: true });
        expect(rows).toEqual([{ itemid: `p${i}` }]);
      }
      if (dialect === 'postgres') {
        // One statement on this connection for the three runs, under the name every connection uses for it.
        const mine = (await prepared()).filter((r) => r.statement === insert);
        expect(mine).toHaveLength(1);
      }
    });
    // A duplicate key fails the prepared statement's run; the statement itself stays usable.
    const dup = await failure(() => runSql(tdb.db.sequelize, insert, ['p1', 9], undefined, { prepare: true }));
    expect(dup.constructor.name).toBe('UniqueConstraintError');
    await runSql(tdb.db.sequelize, insert, ['p3', 3], undefined, { prepare: true });
    expect(await stored()).toEqual(['a 1 null', 'p0 0 null', 'p1 1 null', 'p2 2 null', 'p3 3 null']);
  });
});

describe('runSql planner settings (postgres)', () => {
  let tdb: TestDatabase;
  beforeEach(async () => {
    tdb = await createTestDatabase('postgres');
  });
  afterEach(() => tdb.drop());

  const setting = async (o: { planner?: Record<string, string>; t?: Transaction; sql?: string } = {}) => {
    const sql = o.sql ?? "SELECT current_setting('enable_bitmapscan') AS b, current_setting('enable_seqscan') AS s";
    const [row] = await runSql<{ b: string; s: string }>(tdb.db.sequelize, sql, [], o.t, o.planner ? { planner: o.planner } : {});
    return row;
  };
  const off = { enable_bitmapscan: 'off', enable_seqscan: 'off' };

  it('applies to that statement alone on its own connection, and to the rest of a caller’s transaction', async () => {
    expect(await setting({ planner: off })).toEqual({ b: 'off', s: 'off' });
    // SET LOCAL ended with its transaction: every pooled connection plans as before.
    for (let i = 0; i < 12; i++) expect(await setting()).toEqual({ b: 'on', s: 'on' });
    await tdb.db.transaction(async (t) => {
      expect(await setting({ planner: { enable_bitmapscan: 'off' }, t })).toEqual({ b: 'off', s: 'on' });
    });
    expect(await setting()).toEqual({ b: 'on', s: 'on' });
  });

  it('rolls back its own transaction when the statement fails, leaving the connection usable', async () => {
    await tdb.db.sequelize.query('CREATE TABLE items (itemid VARCHAR(64) PRIMARY KEY)');
    const insert = "INSERT INTO items (itemid) VALUES ('a') RETURNING current_setting('enable_bitmapscan') AS b";
    await setting({ planner: off, sql: insert });
    const err = await setting({ planner: off, sql: insert }).catch((e: Error) => e);
    expect((err as Error).constructor.name).toBe('UniqueConstraintError');
    for (let i = 0; i < 12; i++) expect(await setting()).toEqual({ b: 'on', s: 'on' });
    const rows = await tdb.db.sequelize.query('SELECT itemid FROM items', { type: QueryTypes.SELECT });
    expect(rows).toEqual([{ itemid: 'a' }]);
  });
});

describe('runSql prepare: true with pgPreparedStatements: false (postgres)', () => {
  it('runs the statement unnamed: nothing is prepared on the connection', async () => {
    const pg = await createPgDatabase();
    const db = openDatabase(pg.url, { pgPreparedStatements: false });
    try {
      await db.sequelize.query('CREATE TABLE items (itemid VARCHAR(64) PRIMARY KEY)');
      const names = await db.transaction(async (t) => {
        await runSql(db.sequelize, 'INSERT INTO items (itemid) VALUES ($1)', ['a'], t, { prepare: true });
        await runSql(db.sequelize, 'INSERT INTO items (itemid) VALUES ($1)', ['b'], t, { prepare: true });
        return db.sequelize.query<{ name: string }>('SELECT name FROM pg_prepared_statements', { type: QueryTypes.SELECT, transaction: t });
      });
      expect(names).toEqual([]);
      const rows = await db.sequelize.query('SELECT itemid FROM items ORDER BY itemid', { type: QueryTypes.SELECT });
      expect(rows).toEqual([{ itemid: 'a' }, { itemid: 'b' }]);
    } finally {
      await db.close();
      await pg.drop();
    }
  });
});
