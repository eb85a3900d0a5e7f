/**
 * The devices host's own tables. Times are epoch milliseconds in BIGINT columns (like the relay's), rendered
 * as ISO-8601 by `records.ts`. Every record table has an autoincrement `seq` so "newest first" is exact even
 * when a batch stores many rows in one millisecond; the public record id (a UUID) is unique beside it.
 */
import { DataTypes } from 'sequelize';
import type { Migration } from '../../lib/migrate.js';

const seq = { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true };
const deviceid = { type: DataTypes.STRING(128), allowNull: false };
const uuid = { type: DataTypes.STRING(36), allowNull: false, unique: true };
const time = { type: DataTypes.BIGINT, allowNull: false };
const optional = <T extends object>(type: T) => ({ type, allowNull: true });

export const devicesMigrations: Migration[] = [
  {
    name: '000001_devices',
    async up({ queryInterface: qi, transaction }) {
      await qi.createTable(
        'devices',
        {
          deviceid: { type: DataTypes.STRING(128), primaryKey: true },
          device_name: optional(DataTypes.STRING(255)),
          device_type: optional(DataTypes.STRING(255)),
          os: optional(DataTypes.STRING(255)),
          device_location: optional(DataTypes.STRING(255)),
          ip_address: optional(DataTypes.STRING(255)),
          mac_address: optional(DataTypes.STRING(255)),
          current_user: optional(DataTypes.STRING(255)),
          last_seen: time,
          is_online: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
          // When the current process list was stored; lets reconcile re-send an emptied list too.
          process_snapshot_at: optional(DataTypes.BIGINT),
          created_at: time,
        },
        { transaction },
      );
      await qi.addIndex('devices', ['last_seen'], { name: 'devices_last_seen', transaction });

      await qi.createTable(
        'metrics',
        {
          seq,
          metricid: uuid,
          deviceid,
          timestamp: time,
          cpu_usage: optional(DataTypes.DOUBLE),
          cpu_temp: optional(DataTypes.DOUBLE),
          memory_total: optional(DataTypes.BIGINT),
          memory_used: optional(DataTypes.BIGINT),
          swap_used: optional(DataTypes.BIGINT),
          disk_total: optional(DataTypes.BIGINT),
          disk_used: optional(DataTypes.BIGINT),
          net_bytes_in: optional(DataTypes.BIGINT),
          net_bytes_out: optional(DataTypes.BIGINT),
        },
        { transaction },
      );

      await qi.createTable(
        'activities',
        {
          seq,
          activityid: uuid,
          deviceid,
          timestamp: time,
          activity_type: { type: DataTypes.STRING(255), allowNull: false },
          description: optional(DataTypes.STRING(1000)),
          app: optional(DataTypes.STRING(255)),
          duration: optional(DataTypes.INTEGER),
        },
        { transaction },
      );

      await qi.createTable(
        'processes',
        {
          seq,
          deviceid,
          snapshot_at: time,
          pid: { type: DataTypes.BIGINT, allowNull: false },
          process_name: { type: DataTypes.STRING(255), allowNull: false },
          cpu: optional(DataTypes.DOUBLE),
          memory: optional(DataTypes.BIGINT),
          command_text: optional(DataTypes.TEXT),
        },
        { transaction },
      );

      await qi.createTable(
        'alerts',
        {
          seq,
          alertid: uuid,
          deviceid,
          timestamp: time,
          level: { type: DataTypes.STRING(16), allowNull: false },
          alert_type: { type: DataTypes.STRING(255), allowNull: false },
          message: optional(DataTypes.STRING(500)),
          value: optional(DataTypes.DOUBLE),
          threshold: optional(DataTypes.DOUBLE),
        },
        { transaction },
      );

      await qi.createTable(
        'screenshots',
        {
          seq,
          screenshotid: uuid,
          deviceid,
          timestamp: time,
          path: { type: DataTypes.STRING(1024), allowNull: false },
          resolution: optional(DataTypes.STRING(64)),
          size: optional(DataTypes.BIGINT),
          content_type: optional(DataTypes.STRING(64)),
          // Relative to DATA_DIR when the bytes were uploaded here; null for metadata-only records.
          file: optional(DataTypes.STRING(255)),
        },
        { transaction },
      );

      await qi.createTable(
        'commands',
        {
          seq,
          commandid: { type: DataTypes.STRING(128), allowNull: false, unique: true },
          deviceid,
          command_text: { type: DataTypes.TEXT, allowNull: false },
          status: { type: DataTypes.STRING(16), allowNull: false },
          result: optional(DataTypes.TEXT),
          exit_code: optional(DataTypes.INTEGER),
          created_at: time,
          updated_at: time,
        },
        { transaction },
      );

      for (const table of ['metrics', 'activities', 'processes', 'alerts', 'screenshots', 'commands']) {
        await qi.addIndex(table, ['deviceid', 'seq'], { name: `${table}_device`, transaction });
      }
      for (const table of ['metrics', 'activities', 'alerts', 'screenshots']) {
        await qi.addIndex(table, ['timestamp'], { name: `${table}_time`, transaction });
      }
      await qi.addIndex('commands', ['deviceid', 'status', 'seq'], { name: 'commands_pending', transaction });
      await qi.addIndex('commands', ['updated_at'], { name: 'commands_updated', transaction });
    },
  },
  {
    name: '000002_device_token',
    async up({ queryInterface: qi, transaction }) {
      // DEVICE_AUTH=token: the sha256 (hex) of the device's current bearer token; the token itself is never stored.
      await qi.addColumn('devices', 'token_hash', { type: DataTypes.STRING(64), allowNull: true }, { transaction });
    },
  },
  {
    name: '000003_record_event_ids',
    async up({ queryInterface: qi, transaction }) {
      // The id of the event each record was published as (for devices and commands: the latest one), so that
      // reconcile re-publishes with it and receivers de-duplicate on `Idempotency-Key`/`webhook-id`. Null for
      // records stored before this migration: reconcile mints a new id for those.
      const eventId = { type: DataTypes.STRING(64), allowNull: true };
      for (const table of ['devices', 'metrics', 'activities', 'alerts', 'screenshots', 'commands'])
        await qi.addColumn(table, 'event_id', eventId, { transaction });
      await qi.addColumn('devices', 'process_event_id', eventId, { transaction });
    },
  },
];
