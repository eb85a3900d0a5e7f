/**
 * Cross-process wake-ups on PostgreSQL: a commit (or a re-queue) in one process NOTIFYs, and every relay
 * that LISTENs wakes its dispatcher at once instead of at its next poll. The LISTEN connection is a
 * dedicated client outside the pool; when it drops, the relay polls until it is back (retried every second).
 * On SQLite (one process) both halves do nothing.
 */
import pg from 'pg';
import type { Database } from './db.js';
import { describeError } from './errors.js';
import type { Logger } from './logger.js';

const NOTIFY_CHANNEL = 'relay_outbox';
const RECONNECT_MS = 1000;

export class Notifier {
  private client: pg.Client | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly db: Database,
    private readonly logger: Logger,
    /** `keys`: the circuit keys that got pending rows, or null when the notification does not say. */
    private readonly onNotify: (keys: string[] | null) => void,
  ) {}

  /** Tell every listening process that something may be due. */
  async notify(): Promise<void> {
    if (this.db.dialect === 'postgres') await this.db.sequelize.query(`SELECT pg_notify('${NOTIFY_CHANNEL}', '')`);
  }

  /** Listen (PostgreSQL only); a failure to connect is retried in the background, never thrown. */
  async listen(): Promise<void> {
    if (this.db.dialect !== 'postgres' || this.stopped) return;
    const client = new pg.Client({ connectionString: this.db.postgresUrl });
    const retry = (err: unknown) => {
      if (this.stopped || this.client !== client) return;
      this.client = null;
      this.logger.warn({ error: describeError(err) }, 'outbox LISTEN connection lost; polling until it is back');
      client.end().catch(() => undefined);
      this.retryTimer = setTimeout(() => void this.listen().catch(retry), RECONNECT_MS);
      this.retryTimer.unref();
    };
    client.on('notification', (n) => this.onNotify(keysOf(n.payload)));
    client.on('error', retry);
    client.on('end', () => retry(new Error('connection ended')));
    this.client = client;
    try {
      await client.connect();
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
    } catch (err) {
      retry(err);
    }
  }

  /** Stop listening and close the connection; safe to call twice. */
  async close(): Promise<void> {
    this.stopped = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const c = this.client;
    this.client = null;
    await c?.end().catch(() => undefined);
  }
}

/** The keys a notification names (a JSON array of strings, `000003_notify_keys`), or null. */
export function keysOf(payload: string | undefined): string[] | null {
  if (!payload) return null;
  try {
    const keys: unknown = JSON.parse(payload);
    return Array.isArray(keys) && keys.length > 0 && keys.every((k) => typeof k === 'string') ? keys : null;
  } catch {
    return null;
  }
}
