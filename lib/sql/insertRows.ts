/**
 * One multi-row INSERT (plain, or skipping rows whose key exists), shaped per dialect so its cost stays linear in the number of rows.
 *
 * SQLite: when sequelize bound values, it handed them to node-sqlite3 as named parameters (`$1`, `$2`, ...)
 * and binding by name is a linear search per parameter, so a `VALUES` list cost the square of its parameter
 * count: publishing 20,000 events in 1,000-row statements took 13.4 s on the bench machine. The rows travel
 * as one JSON array in a single parameter and `json_each` unpacks them (17 us per row measured, flat in the
 * batch size, against 57-130 us for 44-row `VALUES` lists). JSON keeps integers (epoch ms fit in 2^53),
 * floats, strings and nulls; booleans arrive as 1/0, which is how SQLite stores them anyway. (`runSql` binds
 * by position, so `VALUES` lists would no longer cost the square; they have not been re-measured against this.)
 * PostgreSQL binds positionally; statements are split only below its 65,535-parameter cap. The engine's
 * outbox and both hosts' stores insert through these two functions; they run on the driver (`runSql`).
 */
import type { Sequelize, Transaction } from 'sequelize';
import { runSql } from './driver.js';

const PG_MAX_PARAMS = 30_000;

/** `($1, $2, ...), (...)` for PostgreSQL, appending the values to `bind`. */
export function pgValues(rows: unknown[][], bind: unknown[]): string {
  return rows
    .map((row) => {
      const first = bind.length;
      bind.push(...row);
      return `(${row.map((_, k) => `$${first + k + 1}`).join(', ')})`;
    })
    .join(', ');
}

/** Identifiers are ours (never client input); quoting keeps reserved words such as `current_user` legal. */
export const quoteIdent = (name: string): string => `"${name}"`;

/** Insert `rows`; with `returning` (a column list), the inserted rows' values of those columns. */
export async function insertRows<R extends object = Record<string, unknown>>(
  sequelize: Sequelize,
  table: string,
  columns: readonly string[],
  rows: unknown[][],
  transaction: Transaction | undefined,
  returning?: string,
): Promise<R[]> {
  return multiRowInsert<R>(sequelize, table, columns, rows, transaction, returning ? ` RETURNING ${returning}` : '', Boolean(returning));
}

/**
 * Insert `rows`, skipping any whose `key` already exists; returns how many were new. Duplicates inside one
 * call are skipped too (DO NOTHING, unlike DO UPDATE, tolerates them in one statement).
 */
export async function insertIgnore(
  sequelize: Sequelize,
  table: string,
  key: string,
  columns: readonly string[],
  rows: unknown[][],
  transaction: Transaction | undefined,
): Promise<number> {
  const tail = ` ON CONFLICT (${quoteIdent(key)}) DO NOTHING RETURNING ${quoteIdent(key)}`;
  return (await multiRowInsert(sequelize, table, columns, rows, transaction, tail, true)).length;
}

async function multiRowInsert<R extends object>(
  sequelize: Sequelize,
  table: string,
  columns: readonly string[],
  rows: unknown[][],
  transaction: Transaction | undefined,
  tail: string,
  readRows: boolean,
): Promise<R[]> {
  if (rows.length === 0) return [];
  const into = `INSERT INTO ${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')})`;
  if (sequelize.getDialect() === 'sqlite') {
    const picks = columns.map((_, i) => `json_extract(value, '$[${i}]')`).join(', ');
    // `WHERE true` is SQLite's documented way to keep an upsert's ON CONFLICT from parsing as a join
    // constraint of the SELECT.
    const out = await runSql<R>(
      sequelize,
      `${into} SELECT ${picks} FROM json_each($1) WHERE true${tail}`,
      [JSON.stringify(rows)],
      transaction,
    );
    return readRows ? out : [];
  }
  const perStatement = Math.max(1, Math.floor(PG_MAX_PARAMS / columns.length));
  const result: R[] = [];
  for (let start = 0; start < rows.length; start += perStatement) {
    const bind: unknown[] = [];
    const values = pgValues(rows.slice(start, start + perStatement), bind);
    const out = await runSql<R>(sequelize, `${into} VALUES ${values}${tail}`, bind, transaction);
    if (readRows) result.push(...out);
  }
  return result;
}
