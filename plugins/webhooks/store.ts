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
import type { EndpointInput, EndpointPatch, EndpointSecret, WebhookEndpoint } from './schemas.js';
import { headersFromStore, headersToStore } from './headers.js';
import type { KeyRing } from './keys.js';
import { ENCRYPTED_PREFIX } from './secrets.js';

/** An endpoint as the dispatcher needs it. */
export interface LiveEndpoint {
  id: string;
  url: string;
  events: string[];
  enabled: boolean;
  failingSince: number | null;
  /** Requests per second, or null for no limit. */
  rateLimit: number | null;
  /** The endpoint's `filter`, or null when it takes every event it subscribes to. */
  filter: EventFilter | null;
  /** Current secret, plus every previous one until it expires. */
  signingSecrets(now?: number): string[];
  /** The endpoint's own request headers (decrypted on first use). */
  headers(): Record<string, string>;
}

/** A rotation that cannot happen now (the API answers 409 with the message). */
export class RotationConflictError extends Error {}

/** A rotation that would leave more than {@link MAX_SIGNING_SECRETS} secrets signing. */
export class RotationLimitError extends RotationConflictError {
  constructor(readonly retryAt: number) {
    super(
      `this endpoint already has ${MAX_SIGNING_SECRETS - 1} previous secrets still signing; ` +
        `rotate again after ${new Date(retryAt).toISOString()}, when the oldest expires`,
    );
  }
}

/** Stored previous secrets: sealed secret and expiry (epoch ms), newest first. */
type PreviousSecret = { secret: string; expires_at: number };

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
/** The current secret and two previous ones, each until its own 24 h are up. */
export const MAX_SIGNING_SECRETS = 3;

export interface StoreOptions {
  db: Database;
  /** Delivery rows carry this target name. */
  target: string;
  /** Keys for secrets and headers at rest; an empty ring stores them in plaintext. */
  keys: KeyRing;
  cacheTtlMs: number;
}

export class WebhookStore {
  private snapshot: { at: number; value: Promise<Snapshot>; settled: boolean; transaction: Transaction | undefined } | null = null;
  private generation = 0;
  /** The newest snapshot loaded, for synchronous reads (`peek`). */
  private latest: Snapshot | null = null;

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

  /** An endpoint as of the newest snapshot loaded, without waiting (the dispatcher's pacing, event data). */
  peek(id: string): LiveEndpoint | undefined {
    return this.latest?.byId.get(id);
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

  async create(
    input: EndpointInput<EventFilter> & { description: string | null; enabled: boolean },
  ): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    const now = Date.now();
    const id = `wh_${ulid(now)}`;
    const secret = generateSecret();
    // Writes go through db.transaction, which queues SQLite writers instead of letting them contend.
    await this.o.db.transaction((transaction) =>
      this.o.db.sequelize.query(
        `INSERT INTO relay_webhooks (id, url, events, description, enabled, secret, headers, header_names, rate_limit, event_filter, created_at, updated_at)
         VALUES (:id, :url, :events, :description, :enabled, :secret, :headers, :headerNames, :rateLimit, :filter, :now, :now)`,
        {
          replacements: {
            id,
            url: input.url,
            events: JSON.stringify(input.events),
            description: input.description,
            enabled: input.enabled,
            secret: this.seal(secret),
            ...this.headerColumns(input.headers),
            rateLimit: input.rate_limit ?? null,
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
  async update(id: string, patch: EndpointPatch<EventFilter>): Promise<WebhookEndpoint | null> {
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
    if (patch.headers !== undefined) {
      sets.push('headers = :headers, header_names = :headerNames');
      Object.assign(replacements, this.headerColumns(patch.headers));
    }
    if (patch.rate_limit !== undefined) set('rate_limit = :rateLimit', 'rateLimit', patch.rate_limit);
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
    return secretAnswer(this.open(String(row.secret), `the secret of webhook ${id}`), previousSecrets(row, Date.now()));
  }

  /**
   * A new secret; the current one and every previous one keep signing (extra signatures) until their own
   * 24 h are up, at most {@link MAX_SIGNING_SECRETS} at a time.
   * @throws RotationLimitError when two previous secrets are still signing.
   */
  async rotate(id: string): Promise<EndpointSecret | null> {
    const now = Date.now();
    const secret = generateSecret();
    const r = await this.o.db.transaction(async (transaction) => {
      const row = await this.row(id, transaction);
      if (!row) return null;
      const previous = previousSecrets(row, now);
      if (previous.length >= MAX_SIGNING_SECRETS - 1) throw new RotationLimitError(previous[previous.length - 1]!.expires_at);
      const list = [{ secret: String(row.secret), expires_at: now + ROTATION_OVERLAP_MS }, ...previous];
      // Compare-and-set on the secret: two rotations at once must not both keep the same previous list.
      const count = await this.o.db.sequelize.query(
        'UPDATE relay_webhooks SET previous_secrets = :list, secret = :secret, updated_at = :now WHERE id = :id AND secret = :old',
        {
          replacements: { id, secret: this.seal(secret), list: JSON.stringify(list), now, old: row.secret },
          transaction,
          type: QueryTypes.BULKUPDATE,
        },
      );
      if (Number(count) === 0) throw new RotationConflictError('another rotation of this endpoint happened at the same time; try again');
      return list;
    });
    this.invalidate();
    return r ? secretAnswer(secret, r) : null;
  }

  /** How many stored secrets and header sets are in plaintext (a warning at start when no key is set). */
  async countPlaintext(): Promise<number> {
    let n = 0;
    for (const r of await this.select()) for (const v of storedValues(r)) if (!v.value.startsWith(ENCRYPTED_PREFIX)) n++;
    return n;
  }

  /**
   * Re-encrypt stored secrets and headers with the newest key: only plaintext values (`all: false`, at every
   * start when a key is set) or every value not already under the newest key (`all: true`, `rotate-key`).
   * Each row is a compare-and-set, so two processes doing it at once cannot lose a rotation made meanwhile.
   * @returns the number of rows changed.
   */
  async reseal({ all }: { all: boolean }): Promise<number> {
    if (!this.o.keys.configured) return 0;
    let changed = 0;
    for (const r of await this.select()) {
      const id = String(r.id);
      const values = storedValues(r);
      const stale = values.filter((v) => (all ? !this.o.keys.current(v.value) : !v.value.startsWith(ENCRYPTED_PREFIX)));
      if (stale.length === 0) continue;
      const secret = String(r.secret);
      const sets: Record<string, unknown> = {
        secret: stale.some((v) => v.column === 'secret') ? this.seal(this.open(secret, `the secret of webhook ${id}`)) : secret,
        headers: r.headers ?? null,
        previous: r.previous_secrets ?? null,
      };
      if (r.headers && stale.some((v) => v.column === 'headers'))
        sets.headers = this.seal(this.open(String(r.headers), `the headers of webhook ${id}`));
      if (stale.some((v) => v.column === 'previous_secrets')) {
        const list = JSON.parse(String(r.previous_secrets)) as PreviousSecret[];
        const resealed = list.map((p) => ({
          ...p,
          secret: (all ? !this.o.keys.current(p.secret) : !p.secret.startsWith(ENCRYPTED_PREFIX))
            ? this.seal(this.open(p.secret, `a previous secret of webhook ${id}`))
            : p.secret,
        }));
        sets.previous = JSON.stringify(resealed);
      }
      const count = await this.o.db.transaction((transaction) =>
        this.o.db.sequelize.query(
          `UPDATE relay_webhooks SET secret = :secret, headers = :headers, previous_secrets = :previous
            WHERE id = :id AND secret = :oldSecret
              AND (headers = :oldHeaders OR (headers IS NULL AND :oldHeaders IS NULL))
              AND (previous_secrets = :oldPrevious OR (previous_secrets IS NULL AND :oldPrevious IS NULL))`,
          {
            replacements: { id, ...sets, oldSecret: secret, oldHeaders: r.headers ?? null, oldPrevious: r.previous_secrets ?? null },
            transaction,
            type: QueryTypes.BULKUPDATE,
          },
        ),
      );
      changed += Number(count) > 0 ? 1 : 0;
    }
    this.invalidate();
    return changed;
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
      let current: string | null = null;
      let previous: Array<{ secret: string; until: number }> | null = null;
      let headers: Record<string, string> | null = null;
      byId.set(id, {
        id,
        url: String(r.url),
        events: JSON.parse(String(r.events)) as string[],
        enabled: Boolean(r.enabled),
        failingSince: r.failing_since === null ? null : num(r.failing_since),
        rateLimit: r.rate_limit === null || r.rate_limit === undefined ? null : num(r.rate_limit),
        filter: r.event_filter ? (JSON.parse(String(r.event_filter)) as EventFilter) : null,
        signingSecrets: (now = Date.now()) => {
          // Decrypted on first use, so one undecryptable secret fails only its own deliveries.
          current ??= this.open(String(r.secret), `the secret of webhook ${id}`);
          previous ??= previousSecrets(r, 0).map((p) => ({
            secret: this.open(p.secret, `a previous secret of webhook ${id}`),
            until: p.expires_at,
          }));
          return [current, ...previous.filter((p) => now < p.until).map((p) => p.secret)];
        },
        headers: () => (headers ??= r.headers ? headersFromStore(this.open(String(r.headers), `the headers of webhook ${id}`)) : {}),
      });
    }
    this.latest = { byId, byType: new Map() };
    return this.latest;
  }

  private seal(secret: string): string {
    return this.o.keys.seal(secret);
  }

  private open(stored: string, what: string): string {
    return this.o.keys.open(stored, what);
  }

  private headerColumns(headers: Record<string, string> | null | undefined): { headers: string | null; headerNames: string | null } {
    const plain = headersToStore(headers);
    return {
      headers: plain === null ? null : this.seal(plain),
      headerNames: plain === null ? null : JSON.stringify(Object.keys(headers!)),
    };
  }
}

/** Previous secrets still signing at `now` (all of them for `now` = 0), newest first. */
function previousSecrets(r: Row, now: number): PreviousSecret[] {
  if (!r.previous_secrets) return [];
  return (JSON.parse(String(r.previous_secrets)) as PreviousSecret[]).filter((p) => p.expires_at > now);
}

function secretAnswer(secret: string, previous: PreviousSecret[]): EndpointSecret {
  const expiries = previous.map((p) => new Date(p.expires_at).toISOString());
  return { secret, previous_secret_expires_at: expiries[0] ?? null, previous_secrets_expire_at: expiries };
}

/** The encrypted-at-rest values of one row, for sealing and rotation. */
function storedValues(r: Row): Array<{ column: 'secret' | 'headers' | 'previous_secrets'; value: string }> {
  const out: Array<{ column: 'secret' | 'headers' | 'previous_secrets'; value: string }> = [{ column: 'secret', value: String(r.secret) }];
  if (r.headers) out.push({ column: 'headers', value: String(r.headers) });
  for (const p of previousSecrets(r, 0)) out.push({ column: 'previous_secrets', value: p.secret });
  return out;
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
    // Names only: the values are credentials.
    headers: r.header_names ? (JSON.parse(String(r.header_names)) as string[]) : [],
    rate_limit: r.rate_limit === null || r.rate_limit === undefined ? null : num(r.rate_limit),
    failing_since: iso(r.failing_since),
    created_at: iso(r.created_at)!,
    updated_at: iso(r.updated_at)!,
  };
}

/** An empty filter is no filter. */
function storedFilter(filter: EventFilter | null | undefined): string | null {
  return filter && Object.keys(filter).length > 0 ? JSON.stringify(filter) : null;
}
