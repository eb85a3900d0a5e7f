/**
 * Webhook endpoints in `relay_webhooks`, and the in-memory snapshot the publish path reads.
 *
 * `route` runs inside every ingest transaction, so it must not query: it reads a snapshot of all endpoints
 * (a few hundred rows at most) with the matching endpoint ids memoised per event type. Every write here
 * drops the snapshot; a short TTL bounds how stale it can be when another process (a CLI, a second host)
 * writes.
 */
import { QueryTypes } from 'sequelize';
import type { Transaction } from 'sequelize';
import type { Database } from '../../lib/db.js';
import { num } from '../../lib/db.js';
import { matchesEventType, ulid } from '../../lib/events.js';
import type { RelayEvent } from '../../lib/events.js';
import { isoOrNull as iso } from '../../lib/time.js';
import { generateSecret } from '../../lib/signing.js';
import { compileFilterSet } from './filter.js';
import type { EventFilter, FilterSet } from './filter.js';
import type { EndpointSecret, WebhookEndpoint } from './schemas.js';
import { ENCRYPTED_PREFIX, decryptSecret, encryptSecret } from './secrets.js';

/** An endpoint as the dispatcher needs it. */
export interface LiveEndpoint {
  id: string;
  url: string;
  events: string[];
  enabled: boolean;
  failingSince: number | null;
  /** The endpoint's `filter`, or null when it takes every event it subscribes to. */
  filter: EventFilter | null;
  /** Current secret, plus the previous one until it expires. */
  signingSecrets(now?: number): string[];
}

interface Snapshot {
  byId: Map<string, LiveEndpoint>;
  byType: Map<string, TypeRoute>;
}

/** Endpoints subscribed to one event type: those without a filter take every event, the others are asked. */
interface TypeRoute {
  plain: Array<{ endpointId: string }>;
  filtered: FilterSet<{ endpointId: string }> | null;
}

type Row = Record<string, unknown>;

export const ROTATION_OVERLAP_MS = 24 * 3600_000;

export interface StoreOptions {
  db: Database;
  /** Delivery rows carry this target name. */
  target: string;
  /** AES-256 key for secrets at rest; null stores them in plaintext. */
  key: Buffer | null;
  cacheTtlMs: number;
}

export class WebhookStore {
  private snapshot: { at: number; value: Promise<Snapshot>; settled: boolean; transaction: Transaction | undefined } | null = null;
  private generation = 0;

  constructor(private readonly o: StoreOptions) {}

  /** Drop the in-memory snapshot (after any write, here or elsewhere). */
  invalidate(): void {
    this.generation += 1;
    this.snapshot = null;
  }

  /**
   * The snapshot; when cold it is loaded in `transaction` (SQLite needs every query of a transaction on it).
   * A caller inside a transaction never waits for a load that runs outside it: that load may be queued for a
   * pool connection which only this caller's commit would free (every connection held by an ingest that
   * waits for the snapshot, the dispatcher's load waiting for a connection: a deadlock until the pool's
   * acquire timeout). It reads on its own connection instead.
   */
  load(transaction?: Transaction): Promise<Snapshot> {
    const now = Date.now();
    const cached = this.snapshot;
    if (cached && now - cached.at <= this.o.cacheTtlMs) {
      if (cached.settled || !transaction || cached.transaction === transaction) return cached.value;
      return this.select(transaction).then((rows) => this.toSnapshot(rows));
    }
    const generation = this.generation;
    const value = this.select(transaction).then((rows) => this.toSnapshot(rows));
    const entry = { at: now, value, settled: false, transaction };
    this.snapshot = entry;
    value.then(
      () => {
        entry.settled = true;
        entry.transaction = undefined;
        // A write during the load may not be in it: keep it for this caller only.
        if (generation !== this.generation && this.snapshot === entry) this.snapshot = null;
      },
      () => {
        if (this.snapshot === entry) this.snapshot = null;
      },
    );
    return value;
  }

  async route(event: RelayEvent, transaction?: Transaction): Promise<Array<{ endpointId: string }>> {
    const s = await this.load(transaction);
    let r = s.byType.get(event.type);
    if (!r) {
      const subscribed = [...s.byId.values()].filter((e) => e.enabled && matchesEventType(e.events, event.type));
      const filtered = subscribed.filter((e) => e.filter).map((e) => ({ key: { endpointId: e.id }, filter: e.filter! }));
      r = {
        plain: subscribed.filter((e) => !e.filter).map((e) => ({ endpointId: e.id })),
        filtered: filtered.length ? compileFilterSet(filtered) : null,
      };
      s.byType.set(event.type, r);
    }
    // Without filters the memoised list is the answer (no allocation per event).
    if (!r.filtered) return r.plain;
    const hits = r.filtered.match(event);
    return r.plain.length === 0 ? hits : r.plain.concat(hits);
  }

  /** One endpoint for sending; re-reads once when it is unknown (created by another process). */
  async live(id: string): Promise<LiveEndpoint | null> {
    const found = (await this.load()).byId.get(id);
    if (found) return found;
    this.invalidate();
    return (await this.load()).byId.get(id) ?? null;
  }

  async list(): Promise<WebhookEndpoint[]> {
    return (await this.select()).map(toEndpoint);
  }

  async get(id: string): Promise<WebhookEndpoint | null> {
    const row = await this.row(id);
    return row ? toEndpoint(row) : null;
  }

  async create(input: {
    url: string;
    events: string[];
    description: string | null;
    enabled: boolean;
    filter?: EventFilter | null;
  }): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    const now = Date.now();
    const id = `wh_${ulid(now)}`;
    const secret = generateSecret();
    // Writes go through db.transaction, which queues SQLite writers instead of letting them contend.
    await this.o.db.transaction((transaction) =>
      this.o.db.sequelize.query(
        `INSERT INTO relay_webhooks (id, url, events, description, enabled, secret, event_filter, created_at, updated_at)
         VALUES (:id, :url, :events, :description, :enabled, :secret, :filter, :now, :now)`,
        {
          replacements: {
            id,
            url: input.url,
            events: JSON.stringify(input.events),
            description: input.description,
            enabled: input.enabled,
            secret: this.seal(secret),
            filter: storedFilter(input.filter),
            now,
          },
          transaction,
        },
      ),
    );
    this.invalidate();
    return { endpoint: toEndpoint((await this.row(id))!), secret };
  }

  /**
   * Change url, events, description or enabled. Re-enabling clears the disabled reason and the failure run;
   * disabling dead-letters the endpoint's pending deliveries (recover them after re-enabling).
   */
  async update(
    id: string,
    patch: { url?: string; events?: string[]; description?: string | null; enabled?: boolean; filter?: EventFilter | null },
  ): Promise<WebhookEndpoint | null> {
    const now = Date.now();
    const sets = ['updated_at = :now'];
    const replacements: Record<string, unknown> = { id, now };
    const set = (sql: string, key: string, value: unknown) => {
      sets.push(sql);
      replacements[key] = value;
    };
    if (patch.url !== undefined) set('url = :url, failing_since = NULL', 'url', patch.url);
    if (patch.events !== undefined) set('events = :events', 'events', JSON.stringify(patch.events));
    if (patch.description !== undefined) set('description = :description', 'description', patch.description);
    if (patch.filter !== undefined) set('event_filter = :filter', 'filter', storedFilter(patch.filter));
    if (patch.enabled === true) set('enabled = :enabled, disabled_reason = NULL, failing_since = NULL', 'enabled', true);
    if (patch.enabled === false) set("enabled = :enabled, disabled_reason = 'disabled by an administrator'", 'enabled', false);
    const found = await this.o.db.transaction(async (transaction) => {
      const count = await this.o.db.sequelize.query(`UPDATE relay_webhooks SET ${sets.join(', ')} WHERE id = :id`, {
        replacements,
        transaction,
        type: QueryTypes.BULKUPDATE,
      });
      if (Number(count) === 0) return false;
      if (patch.enabled === false) await this.deadLetter(id, 'webhook endpoint was disabled by an administrator', now, transaction);
      return true;
    });
    this.invalidate();
    return found ? this.get(id) : null;
  }

  /** Delete the endpoint; its pending deliveries become dead with the reason, in the same transaction. */
  async remove(id: string): Promise<boolean> {
    const now = Date.now();
    const found = await this.o.db.transaction(async (transaction) => {
      const count = await this.o.db.sequelize.query('DELETE FROM relay_webhooks WHERE id = :id', {
        replacements: { id },
        transaction,
        type: QueryTypes.BULKDELETE,
      });
      if (Number(count) === 0) return false;
      await this.deadLetter(id, 'webhook endpoint was deleted', now, transaction);
      return true;
    });
    this.invalidate();
    return found;
  }

  async secret(id: string): Promise<EndpointSecret | null> {
    const row = await this.row(id);
    if (!row) return null;
    const expires = row.previous_secret && num(row.previous_secret_expires_at) > Date.now() ? iso(row.previous_secret_expires_at) : null;
    return { secret: this.open(String(row.secret), id), previous_secret_expires_at: expires };
  }

  /** A new secret; the current one keeps signing (second signature) for 24 h. */
  async rotate(id: string): Promise<EndpointSecret | null> {
    const now = Date.now();
    const secret = generateSecret();
    const expiresAt = now + ROTATION_OVERLAP_MS;
    const count = await this.o.db.transaction((transaction) =>
      this.o.db.sequelize.query(
        'UPDATE relay_webhooks SET previous_secret = secret, previous_secret_expires_at = :expiresAt, secret = :secret, updated_at = :now WHERE id = :id',
        { replacements: { id, secret: this.seal(secret), expiresAt, now }, transaction, type: QueryTypes.BULKUPDATE },
      ),
    );
    this.invalidate();
    return Number(count) > 0 ? { secret, previous_secret_expires_at: iso(expiresAt) } : null;
  }

  /** Disable by the relay itself (410, failing too long); pending deliveries become dead with the reason. */
  async disable(id: string, reason: string): Promise<boolean> {
    const now = Date.now();
    const changed = await this.o.db.transaction(async (transaction) => {
      const count = await this.o.db.sequelize.query(
        'UPDATE relay_webhooks SET enabled = :enabled, disabled_reason = :reason, updated_at = :now WHERE id = :id AND enabled = :was',
        { replacements: { id, reason, now, enabled: false, was: true }, transaction, type: QueryTypes.BULKUPDATE },
      );
      if (Number(count) > 0) await this.deadLetter(id, `webhook endpoint disabled: ${reason}`, now, transaction);
      return Number(count) > 0;
    });
    this.invalidate();
    return changed;
  }

  /** Record the start of a failure run (once), or its end. */
  async setFailing(id: string, failing: boolean, now = Date.now()): Promise<void> {
    const sql = failing
      ? 'UPDATE relay_webhooks SET failing_since = :now WHERE id = :id AND failing_since IS NULL'
      : 'UPDATE relay_webhooks SET failing_since = NULL WHERE id = :id AND failing_since IS NOT NULL';
    await this.o.db.transaction((transaction) =>
      this.o.db.sequelize.query(sql, { replacements: { id, now }, transaction, type: QueryTypes.BULKUPDATE }),
    );
    this.invalidate();
  }

  /**
   * Pending deliveries of a gone or disabled endpoint would only fail: dead-letter them with the reason, so
   * the log says why and `recover` can re-drive them once the endpoint is back.
   */
  async deadLetter(id: string, reason: string, now = Date.now(), transaction?: Transaction): Promise<void> {
    if (!transaction) return this.o.db.transaction((t) => this.deadLetter(id, reason, now, t));
    await this.o.db.sequelize.query(
      `UPDATE relay_deliveries SET status = 'dead', last_error = :reason, updated_at = :now, finished_at = :now
        WHERE target = :target AND endpoint_id = :id AND status = 'pending'`,
      { replacements: { id, reason, now, target: this.o.target }, transaction, type: QueryTypes.BULKUPDATE },
    );
  }

  private async select(transaction?: Transaction): Promise<Row[]> {
    return this.o.db.sequelize.query<Row>('SELECT * FROM relay_webhooks ORDER BY created_at, id', { type: QueryTypes.SELECT, transaction });
  }

  private async row(id: string, transaction?: Transaction): Promise<Row | null> {
    const [row] = await this.o.db.sequelize.query<Row>('SELECT * FROM relay_webhooks WHERE id = :id', {
      replacements: { id },
      type: QueryTypes.SELECT,
      transaction,
    });
    return row ?? null;
  }

  private toSnapshot(rows: Row[]): Snapshot {
    const byId = new Map<string, LiveEndpoint>();
    for (const r of rows) {
      const id = String(r.id);
      let secrets: string[] | null = null;
      const previousUntil = r.previous_secret ? num(r.previous_secret_expires_at) : 0;
      byId.set(id, {
        id,
        url: String(r.url),
        events: JSON.parse(String(r.events)) as string[],
        enabled: Boolean(r.enabled),
        failingSince: r.failing_since === null ? null : num(r.failing_since),
        filter: r.event_filter ? (JSON.parse(String(r.event_filter)) as EventFilter) : null,
        signingSecrets: (now = Date.now()) => {
          // Decrypted on first use, so one undecryptable secret fails only its own deliveries.
          secrets ??= [this.open(String(r.secret), id), ...(r.previous_secret ? [this.open(String(r.previous_secret), id)] : [])];
          return now < previousUntil ? secrets : secrets.slice(0, 1);
        },
      });
    }
    return { byId, byType: new Map() };
  }

  private seal(secret: string): string {
    return this.o.key ? encryptSecret(secret, this.o.key) : secret;
  }

  private open(stored: string, id: string): string {
    if (!stored.startsWith(ENCRYPTED_PREFIX)) return stored;
    if (!this.o.key) throw new Error(`the secret of webhook ${id} is encrypted but no encryption key is configured (RELAY_ENCRYPTION_KEY)`);
    return decryptSecret(stored, this.o.key);
  }
}

function toEndpoint(r: Row): WebhookEndpoint {
  return {
    id: String(r.id),
    url: String(r.url),
    events: JSON.parse(String(r.events)) as string[],
    description: (r.description as string | null) ?? null,
    enabled: Boolean(r.enabled),
    filter: r.event_filter ? (JSON.parse(String(r.event_filter)) as EventFilter) : null,
    disabled_reason: (r.disabled_reason as string | null) ?? null,
    failing_since: iso(r.failing_since),
    created_at: iso(r.created_at)!,
    updated_at: iso(r.updated_at)!,
  };
}

/** An empty filter is no filter. */
function storedFilter(filter: EventFilter | null | undefined): string | null {
  return filter && Object.keys(filter).length > 0 ? JSON.stringify(filter) : null;
}
