/**
 * The few SQL shapes the mentor store needs, written once for both dialects. Both SQLite (>= 3.35) and
 * PostgreSQL speak `INSERT ... ON CONFLICT ... DO NOTHING / DO UPDATE ... WHERE ... RETURNING`, which is
 * exactly "store once, keyed by the origin record id" and "apply only if newer".
 */
import { QueryTypes } from 'sequelize';
import type { Transaction } from 'sequelize';
import type { Database } from '../../../lib/db.js';
import { num } from '../../../lib/db.js';

export type Row = Record<string, unknown>;

/** Identifiers are ours (never client input); quoting keeps reserved words such as `current_user` legal. */
export const q = (name: string) => `"${name}"`;

/**
 * Run a statement that returns rows. sequelize's SQLite driver decides between `run` (no rows) and `all`
 * by whether the text starts with `INSERT`/`UPDATE`; the leading comment makes it use `all`, so `RETURNING`
 * rows come back on SQLite as they do on PostgreSQL.
 */
export function rows<T extends object = Row>(db: Database, sql: string, bind: unknown[], transaction?: Transaction): Promise<T[]> {
  return db.sequelize.query<T>(`/* rows */ ${sql}`, { bind, type: QueryTypes.SELECT, transaction, raw: true });
}

export async function exec(db: Database, sql: string, bind: unknown[], transaction?: Transaction): Promise<void> {
  await db.sequelize.query(sql, { bind, transaction });
}

/** Rows per multi-row INSERT: well under SQLite's 32,766 bound variables for any of our tables. */
const CHUNK_ROWS = 500;

/** `($1, $2), ($3, $4)` for `rowCount` rows of `width` values, numbered from `offset + 1`. */
function placeholders(rowCount: number, width: number, offset = 0): string {
  const out: string[] = [];
  for (let r = 0; r < rowCount; r++) {
    const cells: string[] = [];
    for (let c = 0; c < width; c++) cells.push(`$${offset + r * width + c + 1}`);
    out.push(`(${cells.join(', ')})`);
  }
  return out.join(', ');
}

/**
 * Insert rows, skipping any whose key already exists; returns how many were new. Duplicates inside one
 * request are skipped too (DO NOTHING, unlike DO UPDATE, tolerates them in one statement).
 */
export async function insertIgnore(
  db: Database,
  table: string,
  key: string,
  columns: readonly string[],
  values: unknown[][],
  transaction: Transaction,
): Promise<number> {
  let inserted = 0;
  for (let i = 0; i < values.length; i += CHUNK_ROWS) {
    const chunk = values.slice(i, i + CHUNK_ROWS);
    const sql =
      `INSERT INTO ${q(table)} (${columns.map(q).join(', ')}) VALUES ${placeholders(chunk.length, columns.length)} ` +
      `ON CONFLICT (${q(key)}) DO NOTHING RETURNING ${q(key)}`;
    inserted += (await rows(db, sql, chunk.flat(), transaction)).length;
  }
  return inserted;
}

/** Plain multi-row insert (rows that have no natural key, such as a process list). */
export async function insertAll(db: Database, table: string, columns: readonly string[], values: unknown[][], transaction: Transaction): Promise<void> {
  for (let i = 0; i < values.length; i += CHUNK_ROWS) {
    const chunk = values.slice(i, i + CHUNK_ROWS);
    const sql = `INSERT INTO ${q(table)} (${columns.map(q).join(', ')}) VALUES ${placeholders(chunk.length, columns.length)}`;
    await exec(db, sql, chunk.flat(), transaction);
  }
}

/** Column kinds, for turning stored values back into API values (BIGINT arrives as a string on PostgreSQL). */
export type ColumnKind = 'text' | 'time' | 'int' | 'float' | 'bool';

export function fromDb(kind: ColumnKind, v: unknown): unknown {
  if (v === null || v === undefined) return null;
  switch (kind) {
    case 'time':
      return new Date(num(v)).toISOString();
    case 'int':
    case 'float':
      return num(v);
    case 'bool':
      return v === true || v === 1 || v === '1' || v === 't';
    default:
      return v;
  }
}

export function mapRow(row: Row, columns: Record<string, ColumnKind>): Row {
  const out: Row = {};
  for (const [name, kind] of Object.entries(columns)) out[name] = fromDb(kind, row[name]);
  return out;
}
