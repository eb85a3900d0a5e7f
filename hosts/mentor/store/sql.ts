/**
 * The few SQL shapes the mentor store needs, written once for both dialects. Both SQLite (>= 3.35) and
 * PostgreSQL speak `INSERT ... ON CONFLICT ... DO NOTHING / DO UPDATE ... WHERE ... RETURNING`, which is
 * exactly "store once, keyed by the origin record id" and "apply only if newer". Multi-row inserts go
 * through the engine's `insertRows` / `insertIgnore` (lib/sql/insertRows.ts).
 */
import { QueryTypes } from 'sequelize';
import type { Transaction } from 'sequelize';
import type { Database } from '../../../lib/db.js';
import { num } from '../../../lib/db.js';

export type Row = Record<string, unknown>;

export { quoteIdent as q } from '../../../lib/sql/insertRows.js';

/**
 * Run a statement that returns rows. sequelize's SQLite driver decides between `run` (no rows) and `all`
 * by whether the text starts with `INSERT`/`UPDATE`; the leading comment makes it use `all`, so `RETURNING`
 * rows come back on SQLite as they do on PostgreSQL.
 */
export function rows<T extends object = Row>(db: Database, sql: string, bind: unknown[], transaction?: Transaction): Promise<T[]> {
  return db.sequelize.query<T>(`/* rows */ ${sql}`, { bind, type: QueryTypes.SELECT, transaction, raw: true });
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
