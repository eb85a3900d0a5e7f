/**
 * Test databases: a fresh SQLite file or a fresh PostgreSQL database per call, dropped afterwards.
 * PostgreSQL must be reachable (CI starts it); a test that cannot connect fails rather than skipping.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openDatabase } from '../../lib/db.js';
import type { Database } from '../../lib/db.js';

export const DIALECTS = ['sqlite', 'postgres'] as const;
export type TestDialect = (typeof DIALECTS)[number];

/** Base URL of the PostgreSQL server used for tests; each test database is created next to it. */
export const PG_ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

export interface TestDatabase {
  url: string;
  db: Database;
  /** Close and remove the database. */
  drop(): Promise<void>;
}

export async function createPgDatabase(prefix = 'relay_test'): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 10)}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

export function createSqliteUrl(): { url: string; dir: string; drop(): Promise<void> } {
  const dir = mkdtempSync(path.join(tmpdir(), 'relay-test-'));
  return {
    url: `sqlite:${path.join(dir, 'test.sqlite')}`,
    dir,
    async drop() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function createTestDatabase(dialect: TestDialect): Promise<TestDatabase> {
  const target = dialect === 'postgres' ? await createPgDatabase() : createSqliteUrl();
  const db = openDatabase(target.url);
  return {
    url: target.url,
    db,
    async drop() {
      await db.close().catch(() => undefined);
      await target.drop();
    },
  };
}
