/**
 * The webhook endpoint table. Times are epoch milliseconds like the outbox tables. `secret` holds
 * `enc:v1:...` when an encryption key is configured, plaintext otherwise (both are read back).
 */
import { DataTypes } from 'sequelize';
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
];
