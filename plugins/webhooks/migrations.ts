/**
 * The webhook endpoint table. Times are epoch milliseconds like the outbox tables. `secret` holds
 * `enc:v1:...` when an encryption key is configured, plaintext otherwise (both are read back).
 */
import { DataTypes, QueryTypes } from 'sequelize';
import type { Migration } from '../../lib/migrate.js';

/** The endpoint registry's schema, applied by `createRelay` with the plugin. */
export const webhookMigrations: Migration[] = [
  {
    name: '000001_webhooks',
    async up({ queryInterface: qi, transaction }) {
      await qi.createTable(
        'relay_webhooks',
        {
          id: { type: DataTypes.STRING(40), primaryKey: true },
          url: { type: DataTypes.TEXT, allowNull: false },
          events: { type: DataTypes.TEXT, allowNull: false },
          description: { type: DataTypes.TEXT, allowNull: true },
          enabled: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
          secret: { type: DataTypes.TEXT, allowNull: false },
          previous_secret: { type: DataTypes.TEXT, allowNull: true },
          previous_secret_expires_at: { type: DataTypes.BIGINT, allowNull: true },
          disabled_reason: { type: DataTypes.TEXT, allowNull: true },
          failing_since: { type: DataTypes.BIGINT, allowNull: true },
          created_at: { type: DataTypes.BIGINT, allowNull: false },
          updated_at: { type: DataTypes.BIGINT, allowNull: false },
        },
        { transaction },
      );
    },
  },
  {
    // Issue 13: an endpoint's attribute filter (`filter` in the API; FILTER is a keyword in both dialects) (JSON, checked against the event catalogue at registration).
    name: '000002_webhook_filter',
    async up({ queryInterface: qi, transaction }) {
      await qi.addColumn('relay_webhooks', 'event_filter', { type: DataTypes.TEXT, allowNull: true }, { transaction });
    },
  },
  {
    // Endpoint headers (encrypted like secrets; names apart, in clear, for reads), a rate limit, and every
    // previous secret still signing (a JSON list of {secret, expires_at}, newest first) in place of the one
    // previous_secret column, which is emptied here and no longer read.
    name: '000003_webhook_headers_secrets',
    async up({ queryInterface: qi, transaction }) {
      await qi.addColumn('relay_webhooks', 'headers', { type: DataTypes.TEXT, allowNull: true }, { transaction });
      await qi.addColumn('relay_webhooks', 'header_names', { type: DataTypes.TEXT, allowNull: true }, { transaction });
      await qi.addColumn('relay_webhooks', 'rate_limit', { type: DataTypes.INTEGER, allowNull: true }, { transaction });
      await qi.addColumn('relay_webhooks', 'previous_secrets', { type: DataTypes.TEXT, allowNull: true }, { transaction });
      const rows = await qi.sequelize.query<{ id: string; previous_secret: string; previous_secret_expires_at: string | number }>(
        'SELECT id, previous_secret, previous_secret_expires_at FROM relay_webhooks WHERE previous_secret IS NOT NULL',
        { type: QueryTypes.SELECT, transaction },
      );
      for (const r of rows) {
        const list = [{ secret: r.previous_secret, expires_at: Number(r.previous_secret_expires_at ?? 0) }];
        await qi.sequelize.query(
          'UPDATE relay_webhooks SET previous_secrets = :list, previous_secret = NULL, previous_secret_expires_at = NULL WHERE id = :id',
          { replacements: { id: r.id, list: JSON.stringify(list) }, transaction },
        );
      }
    },
  },
];
