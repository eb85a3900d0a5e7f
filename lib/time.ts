/** Time formatting shared by the outbox's and the plugins' row mappers. */
import { num } from './db.js';

/** A stored epoch-milliseconds column (a string on PostgreSQL BIGINT) as ISO-8601; null stays null. */
export function isoOrNull(ms: unknown): string | null {
  return ms === null || ms === undefined ? null : new Date(num(ms)).toISOString();
}
