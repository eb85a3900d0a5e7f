/**
 * The small repository the devices routes share: the request context, device lookup, chunked inserts and
 * the one helper every ingest route goes through, which stores the record(s) and publishes their events in
 * one transaction (a request is stored whole or not at all, and its deliveries commit with it), shared with
 * concurrent requests through the relay's group commit.
 */
import type { Request } from 'express';
import { QueryTypes } from 'sequelize';
import type { Transaction } from 'sequelize';
import type { ResolvedConfig } from '../../lib/config.js';
import type { Database } from '../../lib/db.js';
import type { GroupTransaction } from '../../lib/groupCommit.js';
import type { RelayEvent } from '../../lib/events.js';
import { notFound, parseOr422 } from '../../lib/http/problem.js';
import type { Logger } from '../../lib/logger.js';
import type { Relay } from '../../lib/relay.js';
import { deviceParams, listQuery } from './schemas.js';

export type Row = Record<string, unknown>;

export interface DevicesContext {
  db: Database;
  relay: Relay;
  config: ResolvedConfig;
  logger: Logger;
}

/** Rows per INSERT: well under SQLite's 32,766 variables and PostgreSQL's 65,535 parameters. */
const INSERT_CHUNK = 500;

export function select(db: Database, sql: string, replacements: Record<string, unknown>, transaction?: Transaction): Promise<Row[]> {
  return db.sequelize.query<Row>(sql, { replacements, type: QueryTypes.SELECT, transaction });
}

/**
 * Run an `INSERT ... ON CONFLICT DO NOTHING`; true when a row was inserted. (Not `RETURNING`: sequelize's
 * SQLite dialect runs INSERTs without reading rows back.) The affected count is the statement's `changes` on
 * SQLite and the result's row count on PostgreSQL.
 */
export async function insertIgnore(db: Database, sql: string, replacements: Record<string, unknown>, transaction: Transaction): Promise<boolean> {
  const [, meta] = await db.sequelize.query(sql, { replacements, transaction });
  const affected = typeof meta === 'number' ? meta : ((meta as { changes?: number } | null)?.changes ?? 0);
  return affected > 0;
}

/** The device row, or a 404. `forUpdate` serialises writers of one device on PostgreSQL (SQLite already is). */
export async function requireDevice(db: Database, deviceid: string, t?: Transaction, { forUpdate = false } = {}): Promise<Row> {
  const lock = forUpdate && db.dialect === 'postgres' ? ' FOR UPDATE' : '';
  const [row] = await select(db, `SELECT * FROM devices WHERE deviceid = :deviceid${lock}`, { deviceid }, t);
  if (!row) throw notFound(`Device ${JSON.stringify(deviceid)} is not registered; register it with POST /api/v1/devices/register`);
  return row;
}

export async function insertRows(db: Database, table: string, rows: Row[], transaction: Transaction): Promise<void> {
  const qi = db.sequelize.getQueryInterface();
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    await qi.bulkInsert(table, rows.slice(i, i + INSERT_CHUNK), { transaction });
  }
}

/** The validated `{id}` path parameter (422 naming `id` when it is not a device id). */
export const deviceIdOf = (req: Request): string => parseOr422(deviceParams, req.params, 'path').id;

/** `?limit=` (1..1000, default 100). */
export const limitOf = (req: Request): number => parseOr422(listQuery, req.query, 'query').limit;

export const requestIdOf = (req: Request): string | null => (req.id === undefined || req.id === null ? null : String(req.id));

/**
 * Run an ingestion through the relay's group commit: check the device exists, let `store` queue its rows
 * (`tx.insert`) and return the events, which are queued too; the request is answered after the commit that
 * holds them, shared with concurrent requests. `store` may run twice (see `relay.transaction`). With
 * `direct`, `store` writes through `tx.transaction` itself and runs in a savepoint of its own.
 * Throws (and stores nothing of this request) on any failure.
 */
export async function ingest<T>(
  ctx: DevicesContext,
  deviceid: string,
  store: (tx: GroupTransaction, device: Row) => Promise<{ events: RelayEvent[]; result: T }>,
  options: { lockDevice?: boolean; direct?: boolean } = {},
): Promise<T> {
  return ctx.relay.transaction(
    async (tx) => {
      const device = await requireDevice(ctx.db, deviceid, tx.transaction, { forUpdate: options.lockDevice });
      const { events, result } = await store(tx, device);
      tx.publish(events);
      return result;
    },
    { savepoint: options.direct },
  );
}

/** The newest `limit` rows of one device's table (`seq` breaks ties within a millisecond). */
export async function listNewest(db: Database, table: string, deviceid: string, limit: number): Promise<Row[]> {
  await requireDevice(db, deviceid);
  return select(db, `SELECT * FROM ${table} WHERE deviceid = :deviceid ORDER BY seq DESC LIMIT :limit`, { deviceid, limit });
}
