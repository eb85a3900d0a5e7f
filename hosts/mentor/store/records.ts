/**
 * Append-only telemetry (metrics, activities, alerts, screenshots): stored once per origin record id, read
 * back newest first. One table description drives the insert, the read and the API shape.
 */
import type { Database } from '../../../lib/db.js';
import type { Transaction } from 'sequelize';
import { insertIgnore, PG_ROWS_PER_STATEMENT } from '../../../lib/sql/insertRows.js';
import { mapRow, q, rows } from './sql.js';
import type { ColumnKind, Row } from './sql.js';

export interface RecordKind {
  table: string;
  /** The origin record id column. */
  key: string;
  /** Every column but `received_at`, in API order; `timestamp` is epoch ms in the database. */
  columns: Record<string, ColumnKind>;
}

export const RECORD_KINDS = {
  metrics: {
    table: 'metrics',
    key: 'metricid',
    columns: {
      metricid: 'text',
      deviceid: 'text',
      timestamp: 'time',
      cpu_usage: 'float',
      cpu_temp: 'float',
      memory_total: 'int',
      memory_used: 'int',
      swap_used: 'int',
      disk_total: 'int',
      disk_used: 'int',
      net_bytes_in: 'int',
      net_bytes_out: 'int',
    },
  },
  activities: {
    table: 'activities',
    key: 'activityid',
    columns: {
      activityid: 'text',
      deviceid: 'text',
      timestamp: 'time',
      activity_type: 'text',
      description: 'text',
      app: 'text',
      duration: 'float',
    },
  },
  alerts: {
    table: 'alerts',
    key: 'alertid',
    columns: {
      alertid: 'text',
      deviceid: 'text',
      timestamp: 'time',
      level: 'text',
      alert_type: 'text',
      message: 'text',
      value: 'float',
      threshold: 'float',
    },
  },
  screenshots: {
    table: 'screenshots',
    key: 'screenshotid',
    columns: {
      screenshotid: 'text',
      deviceid: 'text',
      timestamp: 'time',
      path: 'text',
      resolution: 'text',
      size: 'int',
      content_type: 'text',
    },
  },
} as const satisfies Record<string, RecordKind>;

export type RecordKindName = keyof typeof RECORD_KINDS;

export interface StoreResult {
  received: number;
  stored: number;
  duplicates: number;
}

/**
 * Store a whole request in one transaction: every record or none. A record whose id is already stored is
 * a duplicate forward (a retry, a replay, a reconcile) and is skipped, not an error.
 */
export async function storeRecords(db: Database, kind: RecordKind, records: Array<Record<string, unknown>>): Promise<StoreResult> {
  if (records.length === 0) return { received: 0, stored: 0, duplicates: 0 };
  const now = Date.now();
  const names = [...Object.keys(kind.columns), 'received_at'];
  const values = records.map((r) =>
    names.map((n) => (n === 'received_at' ? now : n === 'timestamp' ? (r.timestamp ?? now) : (r[n] ?? null))),
  );
  const write = (t: Transaction | undefined) => insertIgnore(db.sequelize, kind.table, kind.key, names, values, t);
  // PostgreSQL runs one statement atomically on its own: a request that fits in one needs no BEGIN and
  // COMMIT (two more round trips). Larger ones, and SQLite's writes (queued for its one writer), take a
  // transaction.
  const oneStatement = db.dialect === 'postgres' && values.length <= PG_ROWS_PER_STATEMENT;
  const stored = oneStatement ? await write(undefined) : await db.transaction(write);
  return { received: records.length, stored, duplicates: records.length - stored };
}

const withReceived = (kind: RecordKind): Record<string, ColumnKind> => ({ ...kind.columns, received_at: 'time' });

/** A device's records, newest first (ties broken by id so pages are stable). */
export async function listRecords(db: Database, kind: RecordKind, deviceid: string, limit: number): Promise<Row[]> {
  const found = await rows(
    db,
    `SELECT * FROM ${q(kind.table)} WHERE deviceid = $1 ORDER BY ${q('timestamp')} DESC, ${q(kind.key)} DESC LIMIT $2`,
    [deviceid, limit],
  );
  return found.map((r) => mapRow(r, withReceived(kind)));
}

/** Activities across devices (the dashboard feed), newest first, optionally for one device. */
export async function listActivities(db: Database, limit: number, deviceid?: string): Promise<Row[]> {
  const kind = RECORD_KINDS.activities;
  const where = deviceid === undefined ? '' : 'WHERE deviceid = $2';
  const found = await rows(
    db,
    `SELECT * FROM activities ${where} ORDER BY ${q('timestamp')} DESC, activityid DESC LIMIT $1`,
    deviceid === undefined ? [limit] : [limit, deviceid],
  );
  return found.map((r) => mapRow(r, withReceived(kind)));
}
