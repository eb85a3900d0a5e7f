/**
 * Remote commands: created here, delivered to the devices host as `command.created` through the relay (the
 * command row and its outbox rows commit together, so a stored command is always delivered and a failed
 * insert never sends one), and brought up to date by `command.updated` forwards.
 */
import { randomUUID } from 'node:crypto';
import type { Transaction } from 'sequelize';
import type { Database } from '../../../lib/db.js';
import { isCommandAllowed } from '../../shared/commands.js';
import { createEvent } from '../../../lib/events.js';
import type { Relay } from '../../../lib/relay.js';
import type { CommandStatus } from '../schemas.js';
import { mapRow, rows } from './sql.js';
import type { ColumnKind, Row } from './sql.js';

/** `commands.commandid` is VARCHAR(64) (hosts/mentor/migrations.ts). */
const COMMAND_ID_MAX = 64;

const COMMAND_COLUMNS = {
  commandid: 'text',
  deviceid: 'text',
  command_text: 'text',
  status: 'text',
  result: 'text',
  exit_code: 'int',
  created_at: 'time',
  updated_at: 'time',
} as const satisfies Record<string, ColumnKind>;

/** Stores the command `pending` and publishes it; null when the device is unknown. */
export async function createCommand(
  db: Database,
  relay: Relay,
  input: { deviceid: string; command_text: string; requestId?: string | null },
): Promise<Row | null> {
  const now = Date.now();
  const commandid = randomUUID();
  const createdAt = new Date(now).toISOString();
  return db.transaction(async (t) => {
    const device = await rows(db, 'SELECT deviceid FROM devices WHERE deviceid = $1', [input.deviceid], t);
    if (device.length === 0) return null;
    await db.sequelize.query(
      'INSERT INTO commands (commandid, deviceid, command_text, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)',
      { bind: [commandid, input.deviceid, input.command_text, 'pending', now, now], transaction: t },
    );
    const event = createEvent({
      type: 'command.created',
      deviceid: input.deviceid,
      data: { commandid, deviceid: input.deviceid, command_text: input.command_text, created_at: createdAt },
      requestId: input.requestId ?? null,
    });
    await relay.publish(event, { transaction: t });
    return {
      commandid,
      deviceid: input.deviceid,
      command_text: input.command_text,
      status: 'pending',
      result: null,
      exit_code: null,
      created_at: createdAt,
      updated_at: createdAt,
    };
  });
}

export type StatusOutcome =
  | { outcome: 'applied' | 'stale'; command: Row }
  | { outcome: 'not_found' }
  | { outcome: 'wrong_device'; deviceid: string };

/**
 * Apply a status report. Reports carry the device-side `updated_at`; one older than the status in force
 * (a delayed retry of `running` after `completed`) is acknowledged but not applied.
 */
export async function updateCommandStatus(db: Database, s: CommandStatus): Promise<StatusOutcome> {
  const now = Date.now();
  const at = s.updated_at ?? now;
  return db.transaction(async (t) => {
    const lock = db.dialect === 'postgres' ? ' FOR UPDATE' : '';
    const select = () => rows(db, `SELECT * FROM commands WHERE commandid = $1${lock}`, [s.commandid], t);
    let [row] = await select();
    if (!row) {
      const learned = await learnCommand(db, s, at, now, t);
      if (learned) return learned;
      // A concurrent report stored it first: apply this one the usual way.
      [row] = await select();
      if (!row) return { outcome: 'not_found' };
    }
    if (s.deviceid !== undefined && row.deviceid !== s.deviceid) return { outcome: 'wrong_device', deviceid: String(row.deviceid) };
    if (row.status_at !== null && row.status_at !== undefined && Number(row.status_at) > at) {
      return { outcome: 'stale', command: mapRow(row, COMMAND_COLUMNS) };
    }
    const [updated] = await rows(
      db,
      'UPDATE commands SET status = $2, result = $3, exit_code = $4, status_at = $5, updated_at = $6 WHERE commandid = $1 RETURNING *',
      [s.commandid, s.status, s.result ?? null, s.exit_code ?? null, at, now],
      t,
    );
    return { outcome: 'applied', command: mapRow(updated!, COMMAND_COLUMNS) };
  });
}

/**
 * A report of a command this mentor did not create: one made on the devices host (Raqeem's create), which
 * reports it with its `command_text`. Stored when it names a known device and passes the allow-list, so the
 * mentor lists it and later reports apply; anything else stays `not_found`.
 */
async function learnCommand(db: Database, s: CommandStatus, at: number, now: number, t: Transaction): Promise<StatusOutcome | null> {
  if (s.deviceid === undefined || s.command_text === undefined || !isCommandAllowed(s.command_text)) return { outcome: 'not_found' };
  // The column holds 64 characters (the ids this relay makes are 36-character UUIDs); a longer one cannot be ours.
  if (s.commandid.length > COMMAND_ID_MAX) return { outcome: 'not_found' };
  const device = await rows(db, 'SELECT deviceid FROM devices WHERE deviceid = $1', [s.deviceid], t);
  if (device.length === 0) return { outcome: 'not_found' };
  const [inserted] = await rows(
    db,
    'INSERT INTO commands (commandid, deviceid, command_text, status, result, exit_code, status_at, created_at, updated_at) ' +
      'VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (commandid) DO NOTHING RETURNING *',
    [s.commandid, s.deviceid, s.command_text, s.status, s.result ?? null, s.exit_code ?? null, at, s.created_at ?? at, now],
    t,
  );
  if (!inserted) return null;
  return { outcome: 'applied', command: mapRow(inserted, COMMAND_COLUMNS) };
}

export async function listCommands(db: Database, deviceid: string, limit: number): Promise<Row[]> {
  const found = await rows(db, 'SELECT * FROM commands WHERE deviceid = $1 ORDER BY created_at DESC, commandid DESC LIMIT $2', [
    deviceid,
    limit,
  ]);
  return found.map((r) => mapRow(r, COMMAND_COLUMNS));
}

export async function getCommand(db: Database, commandid: string): Promise<Row | null> {
  const [row] = await rows(db, 'SELECT * FROM commands WHERE commandid = $1', [commandid]);
  return row ? mapRow(row, COMMAND_COLUMNS) : null;
}
