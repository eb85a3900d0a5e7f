/**
 * The devices store's SQL: reads, the device lookup every route starts from, and multi-row inserts through
 * the engine's one insert helper (json_each on SQLite, VALUES on PostgreSQL).
 */
import { QueryTypes } from 'sequelize';
import type { Transaction } from 'sequelize';
import type { Database } from '../../../lib/db.js';
import { notFound } from '../../../lib/http/problem.js';
import { insertRows } from '../../../lib/sql/insertRows.js';

export { insertIgnore, quoteIdent as q } from '../../../lib/sql/insertRows.js';

export type Row = Record<string, unknown>;

export function select(db: Database, sql: string, replacements: Record<string, unknown>, transaction?: Transaction): Promise<Row[]> {
  return db.sequelize.query<Row>(sql, { replacements, type: QueryTypes.SELECT, transaction });
}

/** The device row, or a 404. `forUpdate` serialises writers of one device on PostgreSQL (SQLite already is). */
export async function requireDevice(db: Database, deviceid: string, t?: Transaction, { forUpdate = false } = {}): Promise<Row> {
  const lock = forUpdate && db.dialect === 'postgres' ? ' FOR UPDATE' : '';
  const [row] = await select(db, `SELECT * FROM devices WHERE deviceid = :deviceid${lock}`, { deviceid }, t);
  if (!row) throw notFound(`Device ${JSON.stringify(deviceid)} not found; register it with POST /api/v1/devices/register`);
  return row;
}

/** Insert records given as objects that all have the same keys (the routes build them that way). */
export async function insertRecords(db: Database, table: string, records: Row[], transaction: Transaction): Promise<void> {
  if (records.length === 0) return;
  const columns = Object.keys(records[0]!);
  await insertRows(
    db.sequelize,
    table,
    columns,
    records.map((r) => columns.map((c) => r[c] ?? null)),
    transaction,
  );
}

/** The newest `limit` rows of one device's table (`seq` breaks ties within a millisecond). */
export async function listNewest(db: Database, table: string, deviceid: string, limit: number): Promise<Row[]> {
  await requireDevice(db, deviceid);
  return select(db, `SELECT * FROM ${table} WHERE deviceid = :deviceid ORDER BY seq DESC LIMIT :limit`, { deviceid, limit });
}
