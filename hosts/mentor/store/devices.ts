/**
 * Devices and their process lists: the two kinds of state that are REPLACED rather than appended, so both
 * carry a device-side time and an older forward never overwrites a newer one (forwards may arrive out of
 * order: retries, replays, several dispatchers).
 */
import type { Database } from '../../../lib/db.js';
import type { ProcessSnapshot, Registration } from '../schemas.js';
import { insertRows } from '../../../lib/sql/insertRows.js';
import { mapRow, q, rows } from './sql.js';
import type { ColumnKind, Row } from './sql.js';

const DEVICE_COLUMNS = {
  deviceid: 'text',
  device_name: 'text',
  device_type: 'text',
  os: 'text',
  device_location: 'text',
  ip_address: 'text',
  mac_address: 'text',
  current_user: 'text',
  last_seen: 'time',
  is_online: 'bool',
  created_at: 'time',
  updated_at: 'time',
} as const satisfies Record<string, ColumnKind>;

const OPTIONAL_FIELDS = ['device_name', 'device_type', 'os', 'device_location', 'ip_address', 'mac_address', 'current_user'] as const;

export interface RegisterResult {
  deviceid: string;
  created: boolean;
  /** False when a newer registration was already stored (this one was stale and ignored). */
  applied: boolean;
}

/**
 * Upsert a device. Fields absent from the request keep their stored values; `last_seen` (now when absent)
 * orders registrations, and the conditional DO UPDATE makes "newer wins" one atomic statement.
 */
export async function registerDevice(db: Database, reg: Registration): Promise<RegisterResult> {
  const now = Date.now();
  const present = OPTIONAL_FIELDS.filter((f) => reg[f] !== undefined);
  const columns = ['deviceid', ...present, 'last_seen', 'is_online', 'created_at', 'updated_at'];
  const values = [reg.deviceid, ...present.map((f) => reg[f] ?? null), reg.last_seen ?? now, reg.is_online ?? true, now, now];
  const updates = [...present, 'last_seen', 'is_online', 'updated_at'].map((c) => `${q(c)} = excluded.${q(c)}`);
  return db.transaction(async (t) => {
    const existing = await rows(db, 'SELECT deviceid FROM devices WHERE deviceid = $1', [reg.deviceid], t);
    const applied = await rows(
      db,
      `INSERT INTO devices (${columns.map(q).join(', ')}) VALUES (${columns.map((_, i) => `$${i + 1}`).join(', ')}) ` +
        `ON CONFLICT (deviceid) DO UPDATE SET ${updates.join(', ')} WHERE devices.last_seen <= excluded.last_seen ` +
        'RETURNING deviceid',
      values,
      t,
    );
    return { deviceid: reg.deviceid, created: existing.length === 0, applied: applied.length > 0 };
  });
}

export async function getDevice(db: Database, deviceid: string): Promise<Row | null> {
  const [row] = await rows(db, 'SELECT * FROM devices WHERE deviceid = $1', [deviceid]);
  return row ? mapRow(row, DEVICE_COLUMNS) : null;
}

/** Every device, most recently seen first. */
export async function listDevices(db: Database, limit: number): Promise<Row[]> {
  const found = await rows(db, 'SELECT * FROM devices ORDER BY last_seen DESC, deviceid LIMIT $1', [limit]);
  return found.map((r) => mapRow(r, DEVICE_COLUMNS));
}

export interface SnapshotResult {
  deviceid: string;
  /** False when an equal or newer snapshot was already stored. */
  replaced: boolean;
  inserted: number;
}

const PROCESS_COLUMNS = ['deviceid', 'snapshot_at', 'pid', 'process_name', 'cpu', 'memory', 'command_text'] as const;

/**
 * Replace the device's process list with a newer snapshot. Claiming the snapshot row first (conditional
 * upsert) decides the winner and, on PostgreSQL, row-locks it, so two concurrent snapshots of one device
 * cannot interleave their delete and insert.
 */
export async function replaceProcesses(db: Database, s: ProcessSnapshot): Promise<SnapshotResult> {
  const now = Date.now();
  return db.transaction(async (t) => {
    const won = await rows(
      db,
      'INSERT INTO process_snapshots (deviceid, snapshot_at, process_count, received_at) VALUES ($1, $2, $3, $4) ' +
        'ON CONFLICT (deviceid) DO UPDATE SET snapshot_at = excluded.snapshot_at, process_count = excluded.process_count, ' +
        'received_at = excluded.received_at WHERE process_snapshots.snapshot_at < excluded.snapshot_at RETURNING deviceid',
      [s.deviceid, s.snapshotAt, s.processes.length, now],
      t,
    );
    if (won.length === 0) return { deviceid: s.deviceid, replaced: false, inserted: 0 };
    await db.sequelize.query('DELETE FROM processes WHERE deviceid = $1', { bind: [s.deviceid], transaction: t });
    const values = s.processes.map((p) => [
      s.deviceid,
      s.snapshotAt,
      p.pid,
      p.process_name,
      p.cpu ?? null,
      p.memory ?? null,
      p.command_text ?? null,
    ]);
    await insertRows(db.sequelize, 'processes', PROCESS_COLUMNS, values, t);
    return { deviceid: s.deviceid, replaced: true, inserted: values.length };
  });
}

/** The device's current process list, busiest first. */
export async function listProcesses(db: Database, deviceid: string, limit: number): Promise<Row[]> {
  const found = await rows(db, 'SELECT * FROM processes WHERE deviceid = $1 ORDER BY cpu DESC NULLS LAST, pid LIMIT $2', [deviceid, limit]);
  return found.map((r) =>
    mapRow(r, {
      deviceid: 'text',
      pid: 'int',
      process_name: 'text',
      cpu: 'float',
      memory: 'int',
      command_text: 'text',
      snapshot_at: 'time',
    }),
  );
}
