/**
 * `SQLITE_SYNCHRONOUS` / `openDatabase(url, { sqliteSynchronous })`: the level is applied to every SQLite
 * connection (sequelize's default one and the kept transaction connection), read back with
 * `PRAGMA synchronous` (1 = NORMAL, 2 = FULL); a host passes the variable through; bad values are refused.
 */
import { QueryTypes } from 'sequelize';
import type { Transaction } from 'sequelize';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../hosts/shared/config.js';
import { openDatabase } from '../lib/db.js';
import type { Database, SqliteSynchronous } from '../lib/db.js';
import { createPgDatabase, createSqliteUrl } from './helpers/db.js';
import { startMentorFixture } from './helpers/mentor.js';

const LEVEL = { 1: 'normal', 2: 'full' } as Record<number, string>;

async function level(db: Database, inTransaction: boolean): Promise<string> {
  const read = async (transaction?: Transaction) => {
    const [row] = await db.sequelize.query<{ synchronous: number }>('PRAGMA synchronous', { type: QueryTypes.SELECT, transaction });
    return LEVEL[row!.synchronous] ?? `unknown ${row!.synchronous}`;
  };
  return inTransaction ? db.transaction((t) => read(t)) : read();
}

describe('SQLite synchronous level', () => {
  const cleanup: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanup.splice(0).reverse()) await c();
  });

  it.each([
    [undefined, 'normal'],
    ['normal', 'normal'],
    ['full', 'full'],
  ] as Array<[SqliteSynchronous | undefined, string]>)(
    'openDatabase with sqliteSynchronous %s applies %s on every connection',
    async (given, expected) => {
      const file = createSqliteUrl();
      const db = openDatabase(file.url, given ? { sqliteSynchronous: given } : {});
      cleanup.push(file.drop, () => db.close());
      expect(await level(db, false)).toBe(expected);
      // Twice in a transaction: the first opens the transaction connection, the second reuses the kept one.
      expect(await level(db, true)).toBe(expected);
      expect(await level(db, true)).toBe(expected);
      const [mode] = await db.sequelize.query<{ journal_mode: string }>('PRAGMA journal_mode', { type: QueryTypes.SELECT });
      expect(mode!.journal_mode).toBe('wal');
    },
  );

  it('refuses any other level before opening anything', () => {
    const file = createSqliteUrl();
    cleanup.push(file.drop);
    expect(() => openDatabase(file.url, { sqliteSynchronous: 'off' as SqliteSynchronous })).toThrow(
      'sqliteSynchronous must be normal or full (got "off")',
    );
  });

  it('is ignored on PostgreSQL', async () => {
    const pg = await createPgDatabase();
    const db = openDatabase(pg.url, { sqliteSynchronous: 'full' });
    cleanup.push(pg.drop, () => db.close());
    const [row] = await db.sequelize.query<{ synchronous_commit: string }>('SHOW synchronous_commit', { type: QueryTypes.SELECT });
    expect(row!.synchronous_commit).toBe('on');
  });

  it('SQLITE_SYNCHRONOUS configures a host (default normal) and refuses other values naming the variable', async () => {
    expect(loadConfig('mentor', {}).sqliteSynchronous).toBe('normal');
    expect(loadConfig('mentor', { SQLITE_SYNCHRONOUS: ' FULL ' }).sqliteSynchronous).toBe('full');
    expect(() => loadConfig('devices', { SQLITE_SYNCHRONOUS: 'extra' })).toThrow(ConfigError);
    expect(() => loadConfig('devices', { SQLITE_SYNCHRONOUS: 'extra' })).toThrow(/SQLITE_SYNCHRONOUS must be normal .* or full/);
    const mentor = await startMentorFixture('sqlite', { SQLITE_SYNCHRONOUS: 'full' });
    cleanup.push(() => mentor.close());
    expect(await level(mentor.host.db, false)).toBe('full');
    expect(await level(mentor.host.db, true)).toBe('full');
  });
});
