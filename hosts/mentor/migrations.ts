/**
 * The mentor's central store. Every forwarded record is keyed by its ORIGIN record id (`metricid`, ...), so
 * a retried, replayed or reconciled forward lands on the same row. Times are epoch milliseconds (BIGINT) so
 * ordering and the stale-registration / stale-snapshot comparisons are plain integer comparisons on both
 * dialects; the API turns them back into ISO-8601.
 */
import { DataTypes } from 'sequelize';
import type { Migration } from '../../lib/migrate.js';

const id = (length = 128) => ({ type: DataTypes.STRING(length), primaryKey: true, allowNull: false });
const deviceid = { type: DataTypes.STRING(128), allowNull: false };
const text = (length?: number) => ({ type: length ? DataTypes.STRING(length) : DataTypes.TEXT, allowNull: true });
const time = (allowNull = false) => ({ type: DataTypes.BIGINT, allowNull });
const double = { type: DataTypes.DOUBLE, allowNull: true };
const bigint = { type: DataTypes.BIGINT, allowNull: true };

export const mentorMigrations: Migration[] = [
  {
    name: '000001_mentor_store',
    async up({ queryInterface: qi, transaction }) {
      await qi.createTable(
        'devices',
        {
          deviceid: id(),
          device_name: text(255),
          device_type: text(255),
          os: text(255),
          device_location: text(255),
          ip_address: text(255),
          mac_address: text(255),
          // A reserved word in PostgreSQL: every raw statement quotes it.
          current_user: text(255),
          last_seen: time(),
          is_online: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
          created_at: time(),
          updated_at: time(),
        },
        { transaction },
      );

      await qi.createTable(
        'metrics',
        {
          metricid: id(),
          deviceid,
          timestamp: time(),
          cpu_usage: double,
          cpu_temp: double,
          memory_total: bigint,
          memory_used: bigint,
          swap_used: bigint,
          disk_total: bigint,
          disk_used: bigint,
          net_bytes_in: bigint,
          net_bytes_out: bigint,
          received_at: time(),
        },
        { transaction },
      );

      await qi.createTable(
        'activities',
        {
          activityid: id(),
          deviceid,
          timestamp: time(),
          activity_type: text(255),
          description: text(1000),
          app: text(255),
          duration: double,
          received_at: time(),
        },
        { transaction },
      );

      await qi.createTable(
        'alerts',
        {
          alertid: id(),
          deviceid,
          timestamp: time(),
          level: text(16),
          alert_type: text(255),
          message: text(500),
          value: double,
          threshold: double,
          received_at: time(),
        },
        { transaction },
      );

      await qi.createTable(
        'screenshots',
        {
          screenshotid: id(),
          deviceid,
          timestamp: time(),
          path: text(1024),
          resolution: text(64),
          size: bigint,
          content_type: text(128),
          received_at: time(),
        },
        { transaction },
      );

      // The device's current process list and, separately, the time of the snapshot it came from: an
      // empty snapshot has no rows but still orders later snapshots.
      await qi.createTable(
        'processes',
        {
          id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
          deviceid,
          snapshot_at: time(),
          pid: { type: DataTypes.INTEGER, allowNull: false },
          process_name: { type: DataTypes.STRING(255), allowNull: false },
          cpu: double,
          memory: bigint,
          command_text: text(),
        },
        { transaction },
      );
      await qi.createTable(
        'process_snapshots',
        {
          deviceid: id(),
          snapshot_at: time(),
          process_count: { type: DataTypes.INTEGER, allowNull: false },
          received_at: time(),
        },
        { transaction },
      );

      await qi.createTable(
        'commands',
        {
          commandid: id(64),
          deviceid,
          command_text: { type: DataTypes.TEXT, allowNull: false },
          status: { type: DataTypes.STRING(16), allowNull: false },
          result: text(),
          exit_code: { type: DataTypes.INTEGER, allowNull: true },
          created_at: time(),
          updated_at: time(),
          // The device-side time of the status in force; an older status report never overwrites it.
          status_at: time(true),
        },
        { transaction },
      );

      for (const [table, column] of [
        ['metrics', 'timestamp'],
        ['activities', 'timestamp'],
        ['alerts', 'timestamp'],
        ['screenshots', 'timestamp'],
        ['commands', 'created_at'],
      ] as const) {
        await qi.addIndex(table, ['deviceid', column], { name: `${table}_device_${column}`, transaction });
      }
      await qi.addIndex('activities', ['timestamp'], { name: 'activities_timestamp', transaction });
      await qi.addIndex('processes', ['deviceid'], { name: 'processes_device', transaction });
    },
  },
  {
    // The image of a forwarded screenshot, kept apart from the record so that listing records never reads
    // megabytes; keyed by the origin record id like the record (a retried forward stores it once).
    name: '000002_screenshot_images',
    async up({ queryInterface: qi, transaction }) {
      await qi.createTable(
        'screenshot_images',
        {
          screenshotid: id(),
          content_type: { type: DataTypes.STRING(32), allowNull: false },
          size: { type: DataTypes.BIGINT, allowNull: false },
          bytes: { type: DataTypes.BLOB, allowNull: false },
          received_at: time(),
        },
        { transaction },
      );
    },
  },
];
