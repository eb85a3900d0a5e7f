/**
 * Versioned migrations with umzug. Each migration runs in its own transaction; on PostgreSQL an advisory
 * lock serialises processes that start at once, so two hosts booting together never race on DDL.
 */
import { Umzug, SequelizeStorage } from 'umzug';
import type { QueryInterface, Sequelize, Transaction } from 'sequelize';
import type { Database } from './db.js';

/** What a migration's `up` and `down` receive. */
export interface MigrationContext {
  queryInterface: QueryInterface;
  sequelize: Sequelize;
  dialect: Database['dialect'];
  /** Pass it to every statement: sequelize does not attach it implicitly. */
  transaction: Transaction;
}

/** One versioned schema change, applied once (by name) in a transaction of its own. */
export interface Migration {
  name: string;
  /** Apply the change. */
  up(ctx: MigrationContext): Promise<void>;
  /** Revert it (optional). */
  down?(ctx: MigrationContext): Promise<void>;
}

/** Apply pending migrations of one set; `table` keeps each set's history apart (relay, devices, mentor). */
export async function runMigrations(db: Database, migrations: Migration[], table: string): Promise<string[]> {
  const { sequelize, dialect } = db;
  const context = { queryInterface: sequelize.getQueryInterface(), sequelize, dialect };
  const umzug = new Umzug({
    migrations: migrations.map((m) => ({
      name: m.name,
      up: () => db.transaction((transaction) => m.up({ ...context, transaction })),
      down: m.down ? () => db.transaction((transaction) => m.down!({ ...context, transaction })) : undefined,
    })),
    context,
    storage: new SequelizeStorage({ sequelize, tableName: table, modelName: `${table}_meta` }),
    logger: undefined,
  });
  if (dialect !== 'postgres') return (await umzug.up()).map((m) => m.name);
  // Session-level advisory lock on a dedicated connection for the whole run.
  const lockId = hashLockId(table);
  const t = await sequelize.transaction();
  try {
    await sequelize.query('SELECT pg_advisory_xact_lock(:lockId)', { replacements: { lockId }, transaction: t });
    const applied = await umzug.up();
    await t.commit();
    return applied.map((m) => m.name);
  } catch (err) {
    await t.rollback().catch(() => undefined);
    throw err;
  }
}

function hashLockId(name: string): number {
  let h = 0x5eed;
  for (const c of name) h = (Math.imul(h, 31) + c.charCodeAt(0)) | 0;
  return h;
}
