/**
 * The outbox schema. Times are epoch milliseconds in BIGINT columns so both dialects compare them the same
 * way and the claim query needs no date arithmetic.
 */
import { DataTypes } from 'sequelize';
import type { Migration } from '../migrate.js';

/** The outbox schema (`relay_*` tables), applied by `createRelay` unless `migrate: false`. */
export const relayMigrations: Migration[] = [
  {
    name: '000001_outbox',
    async up({ queryInterface: qi, sequelize, dialect, transaction }) {
      await qi.createTable(
        'relay_events',
        {
          id: { type: DataTypes.STRING(64), primaryKey: true },
          type: { type: DataTypes.STRING(64), allowNull: false },
          deviceid: { type: DataTypes.STRING(128), allowNull: true },
          timestamp: { type: DataTypes.STRING(40), allowNull: false },
          data: { type: DataTypes.TEXT, allowNull: false },
          request_id: { type: DataTypes.STRING(128), allowNull: true },
          created_at: { type: DataTypes.BIGINT, allowNull: false },
        },
        { transaction },
      );
      await qi.createTable(
        'relay_deliveries',
        {
          id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
          event_id: { type: DataTypes.STRING(64), allowNull: false },
          event_type: { type: DataTypes.STRING(64), allowNull: false },
          deviceid: { type: DataTypes.STRING(128), allowNull: true },
          target: { type: DataTypes.STRING(64), allowNull: false },
          endpoint_id: { type: DataTypes.STRING(64), allowNull: true },
          circuit_key: { type: DataTypes.STRING(160), allowNull: false },
          status: { type: DataTypes.STRING(16), allowNull: false },
          attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
          max_attempts: { type: DataTypes.INTEGER, allowNull: false },
          next_attempt_at: { type: DataTypes.BIGINT, allowNull: false },
          lease_until: { type: DataTypes.BIGINT, allowNull: true },
          lease_owner: { type: DataTypes.STRING(64), allowNull: true },
          last_status_code: { type: DataTypes.INTEGER, allowNull: true },
          last_error: { type: DataTypes.TEXT, allowNull: true },
          created_at: { type: DataTypes.BIGINT, allowNull: false },
          updated_at: { type: DataTypes.BIGINT, allowNull: false },
          finished_at: { type: DataTypes.BIGINT, allowNull: true },
        },
        { transaction },
      );
      // The claim query reads only due pending rows; a partial index keeps it small however long the log is.
      await sequelize.query("CREATE INDEX relay_deliveries_due ON relay_deliveries (next_attempt_at, id) WHERE status = 'pending'", {
        transaction,
      });
      await sequelize.query("CREATE INDEX relay_deliveries_leased ON relay_deliveries (lease_until) WHERE status = 'inflight'", {
        transaction,
      });
      await qi.addIndex('relay_deliveries', ['event_id'], { name: 'relay_deliveries_event', transaction });
      await qi.addIndex('relay_deliveries', ['status', 'id'], { name: 'relay_deliveries_status', transaction });
      await qi.addIndex('relay_deliveries', ['endpoint_id', 'id'], { name: 'relay_deliveries_endpoint', transaction });
      await qi.addIndex('relay_deliveries', ['created_at'], { name: 'relay_deliveries_created', transaction });
      await qi.createTable(
        'relay_attempts',
        {
          id: { type: DataTypes.BIGINT, primaryKey: true, autoIncrement: true },
          delivery_id: { type: DataTypes.BIGINT, allowNull: false },
          number: { type: DataTypes.INTEGER, allowNull: false },
          started_at: { type: DataTypes.BIGINT, allowNull: false },
          duration_ms: { type: DataTypes.INTEGER, allowNull: false },
          status_code: { type: DataTypes.INTEGER, allowNull: true },
          outcome: { type: DataTypes.STRING(16), allowNull: false },
          spent: { type: DataTypes.BOOLEAN, allowNull: false },
          error: { type: DataTypes.TEXT, allowNull: true },
          response_body: { type: DataTypes.TEXT, allowNull: true },
        },
        { transaction },
      );
      await qi.addIndex('relay_attempts', ['delivery_id', 'id'], { name: 'relay_attempts_delivery', transaction });
      if (dialect === 'postgres') {
        // One NOTIFY per inserting statement, sent at commit: dispatchers in other processes wake at once
        // without the publisher paying an extra round trip.
        await sequelize.query(
          `
          CREATE OR REPLACE FUNCTION relay_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
          BEGIN PERFORM pg_notify('relay_outbox', ''); RETURN NULL; END $$;`,
          { transaction },
        );
        await sequelize.query(
          `
          CREATE TRIGGER relay_deliveries_notify AFTER INSERT ON relay_deliveries
          FOR EACH STATEMENT EXECUTE FUNCTION relay_outbox_notify();`,
          { transaction },
        );
      }
    },
  },
  {
    name: '000002_lighter_writes',
    async up({ sequelize, dialect, transaction }) {
      // Every delivery row is written twice more after its INSERT (claimed, finished) and each write that
      // changes `status` adds an entry to every index. Only dead rows are ever looked up by status (the
      // dead-letter list, recover, counts), and only webhook rows by endpoint: index just those.
      await sequelize.query('DROP INDEX relay_deliveries_status', { transaction });
      await sequelize.query("CREATE INDEX relay_deliveries_dead ON relay_deliveries (id) WHERE status = 'dead'", { transaction });
      await sequelize.query('DROP INDEX relay_deliveries_endpoint', { transaction });
      await sequelize.query('CREATE INDEX relay_deliveries_endpoint ON relay_deliveries (endpoint_id, id) WHERE endpoint_id IS NOT NULL', {
        transaction,
      });
      if (dialect !== 'postgres') return;
      // Deliveries a publisher writes already leased to its own dispatcher need no wake-up anywhere: notify
      // only when the statement inserted rows that wait to be claimed.
      await sequelize.query(
        `
        CREATE OR REPLACE FUNCTION relay_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF EXISTS (SELECT 1 FROM relay_new_deliveries WHERE status = 'pending') THEN PERFORM pg_notify('relay_outbox', ''); END IF;
          RETURN NULL;
        END $$;`,
        { transaction },
      );
      await sequelize.query('DROP TRIGGER relay_deliveries_notify ON relay_deliveries', { transaction });
      await sequelize.query(
        `
        CREATE TRIGGER relay_deliveries_notify AFTER INSERT ON relay_deliveries
        REFERENCING NEW TABLE AS relay_new_deliveries
        FOR EACH STATEMENT EXECUTE FUNCTION relay_outbox_notify();`,
        { transaction },
      );
    },
  },
  {
    name: '000003_notify_keys',
    async up({ sequelize, dialect, transaction }) {
      if (dialect !== 'postgres') return;
      // The notification names the circuit keys that got pending rows (a JSON array), so a listener can tell
      // a key it already holds plenty of, and will refill as it drains, from one that needs a claim now.
      // With an empty payload (too many keys, or a listener of an older version) it claims at once.
      await sequelize.query(
        `
        CREATE OR REPLACE FUNCTION relay_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        DECLARE
          keys text;
        BEGIN
          SELECT json_agg(DISTINCT circuit_key)::text INTO keys FROM relay_new_deliveries WHERE status = 'pending';
          IF keys IS NOT NULL THEN
            PERFORM pg_notify('relay_outbox', CASE WHEN octet_length(keys) <= 4000 THEN keys ELSE '' END);
          END IF;
          RETURN NULL;
        END $$;`,
        { transaction },
      );
    },
  },
];
