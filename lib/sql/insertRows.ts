/**
 * One multi-row INSERT (plain, or skipping rows whose key exists), shaped per dialect so its cost stays linear in the number of rows.
 *
 * The rows travel as one JSON parameter on both dialects, so a statement's text depends on its table and
 * columns, never on its row count, and each dialect keeps it prepared (see `runSql`).
 * - SQLite: `json_each` unpacks a JSON array of arrays. When sequelize bound values, it handed them to
 *   node-sqlite3 as named parameters, and binding by name is a linear search per parameter, so a `VALUES`
 *   list cost the square of its parameter count: publishing 20,000 events in 1,000-row statements took
 *   13.4 s on the bench machine; `json_each` measured 17 us per row, flat in the batch size. JSON keeps
 *   integers (epoch ms fit in 2^53), floats, strings and nulls; booleans arrive as 1/0, which is how SQLite
 *   stores them anyway.
 * - PostgreSQL: `json_populate_recordset` with the table's own row type unpacks a JSON array of objects,
 *   converting each value with its column's input function (the same conversion a bound text parameter
 *   gets, length limits included), so no column types need looking up. A `VALUES` list of parameters had a
 *   new text for every row count, so PostgreSQL parsed and planned each statement anew (see `runSql`).
 * The engine's outbox and both hosts' stores insert through these functions; they run on the driver (`runSql`).
 */
import type { Sequelize, Transaction } from 'sequelize';
import { binder, escapeNul, runSql } from './driver.js';

/** Rows per PostgreSQL statement: bounds the JSON parameter of a very large insert. */
export const PG_ROWS_PER_STATEMENT = 5_000;

/** Identifiers are ours (never client input); quoting keeps reserved words such as `current_user` legal. */
export const quoteIdent = (name: string): string => `"${name}"`;

/** ES2024's string methods (Node 20 has them; the compile target's typings do not). */
interface WellFormed {
  isWellFormed(): boolean;
  toWellFormed(): string;
}

/** One value as JSON for `json_populate_recordset` (what `runSql` would have bound it as). */
function pgJsonValue(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  switch (typeof v) {
    case 'string': {
      // NUL as `runSql` binds it (`escapeNul`). A lone surrogate would be a JSON escape PostgreSQL refuses;
      // bound as a parameter it became U+FFFD (UTF-8), and so does it here.
      const w = v as unknown as WellFormed;
      return JSON.stringify(escapeNul(w.isWellFormed() ? v : w.toWellFormed()));
    }
    case 'number':
      // NaN and the infinities as the text a bound parameter sends (a float column takes them).
      return Number.isFinite(v) ? String(v) : `"${String(v)}"`;
    case 'boolean':
      return v ? 'true' : 'false';
    case 'bigint':
      return `"${v.toString()}"`;
    default:
      if (v instanceof Date) return JSON.stringify(v.toISOString());
      throw new Error(`a multi-row insert takes strings, numbers, booleans and null (got ${Object.prototype.toString.call(v)})`);
  }
}

/** `rows` as a JSON array of objects keyed by column, for `json_populate_recordset`. */
function pgRecordset(columns: readonly string[], rows: unknown[][]): string {
  const keys = columns.map((c) => `${JSON.stringify(c)}:`);
  const out: string[] = [];
  for (const row of rows) {
    let o = '{';
    for (let k = 0; k < keys.length; k++) o += `${k === 0 ? '' : ','}${keys[k]!}${pgJsonValue(row[k])}`;
    out.push(`${o}}`);
  }
  return `[${out.join(',')}]`;
}

/**
 * PostgreSQL's INSERT of `rows` into `table` with one parameter (added through `p`): its text depends only
 * on the table and the columns.
 */
export function pgInsert(table: string, columns: readonly string[], rows: unknown[][], p: (value: unknown) => string): string {
  const cols = columns.map(quoteIdent).join(', ');
  const t = quoteIdent(table);
  return `INSERT INTO ${t} (${cols}) SELECT ${cols} FROM json_populate_recordset(NULL::${t}, ${p(pgRecordset(columns, rows))}::json)`;
}

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
  if (sequelize.getDialect() === 'sqlite') {
    const into = `INSERT INTO ${quoteIdent(table)} (${columns.map(quoteIdent).join(', ')})`;
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
  const result: R[] = [];
  for (let start = 0; start < rows.length; start += PG_ROWS_PER_STATEMENT) {
    const [bind, p] = binder();
    const sql = `${pgInsert(table, columns, rows.slice(start, start + PG_ROWS_PER_STATEMENT), p)}${tail}`;
    const out = await runSql<R>(sequelize, sql, bind, transaction, { prepare: true });
    if (readRows) result.push(...out);
  }
  return result;
}
