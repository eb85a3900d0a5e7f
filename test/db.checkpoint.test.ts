/**
 * SQLite WAL checkpoints off the write path (`openDatabase`, `sqliteCheckpointIntervalMs`): the writer's
 * connections never checkpoint (`wal_autocheckpoint` is 0 on each), and the background checkpointer copies
 * committed pages into the database file within an interval, so the WAL never grows without bound.
 */
import { statSync, writeFileSync } from 'node:fs';
import { QueryTypes } from 'sequelize';
import type { Transaction } from 'sequelize';
import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../lib/db.js';
import type { Database } from '../lib/db.js';
import { createSqliteUrl } from './helpers/db.js';
import { eventually } from './helpers/sink.js';

async function autocheckpoint(db: Database, transaction?: Transaction): Promise<number> {
  const [row] = await db.sequelize.query<{ wal_autocheckpoint: number }>('PRAGMA wal_autocheckpoint', {
    type: QueryTypes.SELECT,
    transaction,
  });
  return row!.wal_autocheckpoint;
}

/** About 1.5 MB of rows, committed: well below SQLite's own checkpoint threshold (1,000 pages, 4 MB). */
async function writeRows(db: Database): Promise<void> {
  await db.sequelize.query('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT)');
  const body = 'x'.repeat(1000);
  for (let batch = 0; batch < 15; batch++) {
    await db.transaction(async (t) => {
      for (let i = 0; i < 100; i++) await db.sequelize.query('INSERT INTO t (body) VALUES (?)', { replacements: [body], transaction: t });
    });
  }
}

describe('SQLite WAL checkpoints', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it('no write connection checkpoints; the background checkpointer moves committed pages into the database file', async () => {
    const file = createSqliteUrl();
    const db = openDatabase(file.url, { sqliteCheckpointIntervalMs: 50 });
    cleanup.push(file.drop, () => db.close());
    expect(await autocheckpoint(db)).toBe(0);
    expect(await db.transaction((t) => autocheckpoint(db, t))).toBe(0);
    await writeRows(db);
    const path = file.url.slice('sqlite:'.length);
    // Only a checkpoint writes pages into the database file; before it they are in the WAL alone.
    await eventually(async () => statSync(path).size > 1_400_000);
    const [row] = await db.sequelize.query<{ n: number }>('SELECT COUNT(*) AS n FROM t', { type: QueryTypes.SELECT });
    expect(row!.n).toBe(1500);
  });

  it('checkpoints a file that was still empty when the checkpointer first opened it', async () => {
    // A connection learns the journal mode when it reads the file: one opened on the empty file would answer
    // every checkpoint with "not in WAL mode" and never copy a page, and the WAL would grow without bound.
    const file = createSqliteUrl();
    const path = file.url.slice('sqlite:'.length);
    writeFileSync(path, '');
    const db = openDatabase(file.url, { sqliteCheckpointIntervalMs: 50 });
    cleanup.push(file.drop, () => db.close());
    await new Promise((r) => setTimeout(r, 300));
    await writeRows(db);
    await eventually(async () => statSync(path).size > 1_400_000);
    const [row] = await db.sequelize.query<{ n: number }>('SELECT COUNT(*) AS n FROM t', { type: QueryTypes.SELECT });
    expect(row!.n).toBe(1500);
  });

  it('with the interval 0, checkpoints are left to SQLite (its default threshold)', async () => {
    const file = createSqliteUrl();
    const db = openDatabase(file.url, { sqliteCheckpointIntervalMs: 0 });
    cleanup.push(file.drop, () => db.close());
    expect(await autocheckpoint(db)).toBe(1000);
    await writeRows(db);
    // Below the threshold nothing was checkpointed: the rows are in the WAL, not the database file.
    expect(statSync(file.url.slice('sqlite:'.length)).size).toBeLessThan(100_000);
  });

  it('refuses an interval that is not a number of milliseconds >= 0', () => {
    expect(() => openDatabase('sqlite::memory:', { sqliteCheckpointIntervalMs: -1 })).toThrow(/sqliteCheckpointIntervalMs/);
  });
});
