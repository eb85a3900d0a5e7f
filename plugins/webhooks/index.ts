/**
 * Signed webhooks (SPEC sections 5-7): every event fans out to each enabled endpoint whose `events` match
 * (exact type, `*`, `prefix.*`), as `{type, timestamp, data}` signed per Standard Webhooks with the
 * endpoint's secret (and the previous one during a rotation). Each endpoint is its own circuit key
 * (`webhooks:<id>`) with its own concurrency, so a slow subscriber only slows itself.
 *
 * Every non-2xx answer retries on the webhook schedule (3xx too: redirects are never followed); 410 is
 * permanent and disables the endpoint at once; an endpoint failing without a success for `disableAfterMs`
 * is disabled. Connections go through the SSRF guard (`ssrf.ts`).
 *
 * The plugin owns its whole feature in this folder: the endpoint store and its schema (`schemas.ts`), the
 * management routes (`routes.ts`, a separate export so the target itself stays free of Express), the SSRF
 * guard, secrets at rest (`secrets.ts`) and its retry schedule.
 */
import type { CircuitOptions } from '../../lib/circuit.js';
import type { Database } from '../../lib/db.js';
import { describeError } from '../../lib/errors.js';
import { DEVICE_EVENTS, EVENT_TYPES, createEvent } from '../../lib/events.js';
import type { RelayEvent } from '../../lib/events.js';
import { silentLogger } from '../../lib/logger.js';
import type { Logger } from '../../lib/logger.js';
import { scheduleBackoff } from '../../lib/retry.js';
import { signHeaders } from '../../lib/signing.js';
import type { TargetPlugin } from '../../lib/target.js';
import { parseEncryptionKeys } from './keys.js';
import { OperationalEvents, isOperationalEvent, operationalRoute } from './operational.js';
import { Pacer } from './rateLimit.js';
import { WebhookUrlError, checkWebhookUrl } from './ssrf.js';
import type { Resolver, SsrfPolicy, UrlCheck } from './ssrf.js';
import { createGuardedAgent } from './agent.js';
import { webhookMigrations } from './migrations.js';
import { buildCatalogue, namesCatalogue } from './catalogue.js';
import type { EventCatalogue, EventTypeDefinition } from './catalogue.js';
import { WebhookFilterError, filterProblems } from './filter.js';
import type { EventFilter, FilterIssue } from './filter.js';
import type { EndpointInput, EndpointPatch, EndpointSecret, WebhookEndpoint } from './schemas.js';
import { WebhookStore } from './store.js';

export type { EndpointInput, EndpointPatch, EndpointSecret, WebhookEndpoint } from './schemas.js';
export { webhookEndpointSchema, endpointSecretSchema } from './schemas.js';
export { webhooksManagement } from './routes.js';
export type { WebhooksManagementOptions } from './routes.js';
export { eventPatternProblem } from './patterns.js';
export { webhookMigrations } from './migrations.js';
export { WebhookUrlError, isPrivateAddress, classifyAddress, checkWebhookUrl, createGuardedLookup } from './ssrf.js';
export type { SsrfPolicy, Resolver, UrlCheck, ResolvedAddress, GuardedLookup } from './ssrf.js';
export { encryptSecret, decryptSecret, parseEncryptionKey } from './secrets.js';
export { KeyRing, parseEncryptionKeys } from './keys.js';
export { RotationConflictError, RotationLimitError, MAX_SIGNING_SECRETS } from './store.js';
export { RESERVED_HEADERS, headerNameProblem } from './headers.js';
export { OPERATIONAL_EVENTS, OPERATIONAL_EVENT_TYPES, isOperationalEvent } from './operational.js';
export type { OperationalEventType } from './operational.js';
export { buildCatalogue, catalogueTable, eventTypeEntrySchema, WEBHOOK_TEST_EVENT } from './catalogue.js';
export type { EventCatalogue, EventTypeDefinition, EventTypeEntry, JsonSchema } from './catalogue.js';
export { compileFilter, filterProblems, WebhookFilterError, FILTER_OPERATORS } from './filter.js';
export type { EventFilter, EventMatcher, FilterCondition, FilterIssue, FilterOperator, Scalar } from './filter.js';
export { replayEndpoint } from './replay.js';
export type { ReplayOptions, ReplayWindow } from './replay.js';

/** The webhooks target's name, stored on its delivery rows. */
export const WEBHOOKS_TARGET = 'webhooks';

/** Webhooks: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h (Svix's schedule). */
export const WEBHOOK_SCHEDULE_MS = [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000] as const;

/** Options of {@link webhooksTarget}. */
export interface WebhooksTargetOptions {
  db: Database;
  /**
   * `RELAY_ENCRYPTION_KEYS` (or `RELAY_ENCRYPTION_KEY`): one or more keys, newest first, each 64 hex characters
   * or base64 of 32 bytes (a string separated by commas or whitespace, or a list). Secrets and endpoint
   * headers are stored AES-256-GCM encrypted with the first; every key decrypts.
   */
  encryptionKey?: string | Buffer | readonly (string | Buffer)[];
  /** `WEBHOOK_ALLOW_PRIVATE_NETWORKS` (false). */
  allowPrivateNetworks?: boolean;
  /** `WEBHOOK_ALLOWED_HOSTS` ([]): hostnames, `*.suffix`, IPs or CIDR blocks always allowed. */
  allowedHosts?: readonly string[];
  /** `WEBHOOK_DISABLE_AFTER`: disable an endpoint failing without a success this long (5 days). */
  disableAfterMs?: number;
  /** Delays after each failed attempt (Svix's schedule: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h). */
  schedule?: readonly number[];
  /** Retry jitter fraction (0.2). */
  jitter?: number;
  /** Per-request timeout for webhooks; can only shorten the dispatcher's. */
  requestTimeoutMs?: number;
  /** Concurrent requests per endpoint (4). */
  concurrency?: number;
  circuit?: Partial<CircuitOptions>;
  /** Event types endpoints may subscribe to (the SPEC's catalogue), without schemas; `catalogue` wins; the operational events are always added. */
  eventTypes?: readonly string[];
  /**
   * The host's event types with the zod schemas of their data and examples (`GET /api/v1/event-types`);
   * `webhook.test` and the operational events are added. Filters can name `data` fields only of these.
   */
  catalogue?: readonly EventTypeDefinition[];
  /**
   * While at least one endpoint is registered (enabled or not), keep every published event in the outbox
   * even when no endpoint takes it, so that replay can backfill an endpoint registered or re-enabled later
   * (true). Pruned by `retentionDays` like the rest. With no endpoint at all nothing extra is written.
   */
  retainEvents?: boolean;
  /** How long the in-memory endpoint list may be reused before re-reading (5000 ms); writes here drop it at once. */
  cacheTtlMs?: number;
  /** DNS resolution for the SSRF checks (default `dns.lookup`); for tests. */
  resolve?: Resolver;
  logger?: Logger;
}

/** The plugin plus the endpoint registry the management API drives. */
export interface WebhooksPlugin extends TargetPlugin {
  readonly policy: SsrfPolicy;
  readonly eventTypes: readonly string[];
  readonly catalogue: EventCatalogue;
  /** Why `filter` is unusable for an endpoint subscribed to `events` (empty when it is fine). */
  filterProblems(filter: unknown, events: readonly string[]): FilterIssue[];
  /** Drop the in-memory endpoint list (every write through this object already does). */
  invalidate(): void;
  /** The registration-time SSRF check. */
  checkUrl(url: string): Promise<UrlCheck>;
  /**
   * @throws WebhookUrlError when the URL is refused, WebhookFilterError when the filter is unusable. Does not
   * validate `events`; see {@link eventPatternProblem}.
   */
  create(input: EndpointInput): Promise<{ endpoint: WebhookEndpoint; secret: string }>;
  /** Every endpoint (without secrets). */
  list(): Promise<WebhookEndpoint[]>;
  /** One endpoint, or null. */
  get(id: string): Promise<WebhookEndpoint | null>;
  /** @throws WebhookUrlError when a new URL is refused, WebhookFilterError when the (resulting) filter is unusable. */
  update(id: string, patch: EndpointPatch): Promise<WebhookEndpoint | null>;
  /** Delete an endpoint; false when it did not exist. */
  remove(id: string): Promise<boolean>;
  /** An endpoint's secret (and the previous one during a rotation), or null. */
  secret(id: string): Promise<EndpointSecret | null>;
  /**
   * A new secret; each previous one keeps signing for its own 24 hours, at most three secrets at a time.
   * @throws RotationConflictError (a RotationLimitError when two previous secrets still sign); the API answers 409.
   */
  rotateSecret(id: string): Promise<EndpointSecret | null>;
  /**
   * Re-encrypt stored secrets and headers with the newest key: plaintext ones only (done at every start
   * when a key is set), or every one not under the newest key (`all`, `raqeem-relay rotate-key`).
   * @returns rows changed.
   */
  reseal(o: { all: boolean }): Promise<number>;
  /** Endpoints whose plaintext values `init` (run by `createRelay`) encrypted. */
  readonly sealedAtStart: number;
  /** Disable an endpoint with a reason; false when it did not exist. */
  disable(id: string, reason: string): Promise<boolean>;
  /** A `webhook.test` event routed to this endpoint only; publish it with the relay. */
  testEvent(id: string): RelayEvent;
}

/** An error from `prepare` that retrying cannot fix (the endpoint is gone or disabled): dead at once. */
function permanentError(message: string): Error {
  return Object.assign(new Error(message), { permanent: true });
}

/** The signed-webhooks target with its endpoint registry (see {@link WebhooksTargetOptions}). */
export function webhooksTarget(o: WebhooksTargetOptions): WebhooksPlugin {
  const disableAfterMs = o.disableAfterMs ?? 5 * 24 * 3600_000;
  const concurrency = o.concurrency ?? 4;
  const schedule = o.schedule ?? WEBHOOK_SCHEDULE_MS;
  if (!(disableAfterMs > 0)) throw new Error('webhooks disableAfterMs must be a positive number of milliseconds');
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('webhooks concurrency must be a whole number >= 1');
  if (schedule.some((d) => !(d >= 0))) throw new Error('webhooks schedule must be a list of delays in milliseconds >= 0');
  const keys = parseEncryptionKeys(o.encryptionKey);
  const policy: SsrfPolicy = {
    allowPrivateNetworks: o.allowPrivateNetworks ?? false,
    allowedHosts: o.allowedHosts ?? [],
    resolve: o.resolve,
  };
  const logger = o.logger ?? silentLogger;
  const describeType = (name: string) => DEVICE_EVENTS.find((e) => e.type === name)?.description ?? '';
  const catalogue = o.catalogue ? buildCatalogue(o.catalogue) : namesCatalogue(o.eventTypes ?? EVENT_TYPES, describeType);
  const retainEvents = o.retainEvents ?? true;
  const checkFilter = (filter: unknown, events: readonly string[]): EventFilter | null => {
    const issues = filterProblems(filter, events, catalogue);
    if (issues.length) throw new WebhookFilterError(issues);
    return (filter ?? null) as EventFilter | null;
  };
  const store = new WebhookStore({ db: o.db, target: WEBHOOKS_TARGET, keys, cacheTtlMs: o.cacheTtlMs ?? 5000 });
  const pacer = new Pacer();
  const ops = new OperationalEvents({
    target: WEBHOOKS_TARGET,
    logger,
    urlOf: async (id) => store.peek(id)?.url ?? (await store.get(id))?.url ?? null,
  });
  const agent = createGuardedAgent(policy, { requestTimeoutMs: o.requestTimeoutMs });

  const checked = async (url: string) => {
    const r = await checkWebhookUrl(url, policy);
    if (!r.ok) throw new WebhookUrlError(r.reason);
    return r.url.toString();
  };

  const disable = async (id: string, reason: string, events: RelayEvent[] = []) => {
    const changed = await store.disable(id, reason);
    if (changed) {
      logger.warn({ webhookId: id, reason }, `webhook endpoint ${id} disabled: ${reason}`);
      if (events.length > 0) ops.disabled(id, reason, events);
    }
    return changed;
  };

  const plugin: WebhooksPlugin & { sealedAtStart: number } = {
    name: WEBHOOKS_TARGET,
    sealedAtStart: 0,
    retry: scheduleBackoff(schedule, { jitter: o.jitter }),
    concurrency,
    circuit: o.circuit,
    migrations: webhookMigrations,
    policy,
    eventTypes: catalogue.names,
    catalogue,
    filterProblems: (filter, events) => filterProblems(filter, events, catalogue),
    // Kept for replay once any endpoint is registered (a host without webhooks writes nothing more than
    // before); `webhook.test` is addressed to one endpoint and never replayed.
    async retain(event, { transaction }) {
      return retainEvents && event.type !== 'webhook.test' && (await store.load(transaction)).byId.size > 0;
    },

    attach: (host) => ops.attach(host),

    async init() {
      try {
        if (keys.configured) {
          const n = await store.reseal({ all: false });
          plugin.sealedAtStart = n;
          if (n > 0) logger.info({ endpoints: n }, `encrypted the plaintext secrets and headers of ${n} webhook endpoints`);
        } else {
          const n = await store.countPlaintext();
          if (n > 0)
            logger.warn(
              { values: n },
              `${n} webhook secrets and header sets are stored in plaintext: set RELAY_ENCRYPTION_KEYS to encrypt them (see docs/configuration.md)`,
            );
        }
      } catch (err) {
        logger.error({ error: describeError(err) }, 'checking webhook secrets at rest failed');
      }
    },

    pace(endpointId, now) {
      const rate = endpointId === null ? null : (store.peek(endpointId)?.rateLimit ?? null);
      return rate === null ? null : pacer.take(endpointId!, rate, now);
    },

    async route(event, { transaction }) {
      if (isOperationalEvent(event.type)) return operationalRoute((await store.load(transaction)).byId.values(), event);
      if (event.type === 'webhook.test') {
        const id = (event.data as { webhook_id?: unknown }).webhook_id;
        const snapshot = await store.load(transaction);
        return typeof id === 'string' && snapshot.byId.has(id) ? [{ endpointId: id }] : [];
      }
      return store.route(event, transaction);
    },

    async prepare(events, { endpointId }) {
      const event = events[0]!;
      const ep = endpointId === null ? null : await store.live(endpointId);
      if (!ep) throw permanentError(`webhook endpoint ${endpointId} was deleted; there is nothing to deliver to`);
      if (!ep.enabled) throw permanentError(`webhook endpoint ${ep.id} is disabled; re-enable it, then recover the delivery`);
      // The exact bytes that are signed are the bytes sent.
      const body = JSON.stringify({ type: event.type, timestamp: event.timestamp, data: event.data });
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'raqeem-relay-webhooks',
        // The endpoint's own headers cannot name anything set below (`headers.ts` refuses those names).
        ...ep.headers(),
        'idempotency-key': event.id,
        ...signHeaders({ id: event.id, body, secret: ep.signingSecrets() }),
      };
      if (event.requestId) headers['x-request-id'] = event.requestId;
      return { url: ep.url, headers, body, dispatcher: agent.dispatcher };
    },

    classify(res) {
      if (res.statusCode >= 200 && res.statusCode < 300) return 'success';
      return res.statusCode === 410 ? 'permanent' : 'retry';
    },

    async onOutcome(info) {
      const id = info.endpointId;
      if (id !== null) ops.outcome(id, info.events);
      // Our own shutdown says nothing about the receiver.
      if (id === null || info.error?.startsWith('aborted')) return;
      if (info.statusCode === 410) {
        await disable(id, 'the receiver answered 410 Gone', info.events);
        return;
      }
      const ep = (await store.load()).byId.get(id);
      // Gone or disabled: `prepare` refused the request as permanent, the delivery is already dead.
      if (!ep || !ep.enabled) return;
      const now = Date.now();
      if (info.verdict === 'success') {
        if (ep.failingSince !== null) await store.setFailing(id, false);
      } else if (ep.failingSince === null) {
        await store.setFailing(id, true, now);
      } else if (now - ep.failingSince >= disableAfterMs) {
        await disable(
          id,
          `failing without a success since ${new Date(ep.failingSince).toISOString()} (WEBHOOK_DISABLE_AFTER)`,
          info.events,
        );
      }
    },

    async close() {
      await agent.close();
    },
    invalidate: () => store.invalidate(),
    checkUrl: (url) => checkWebhookUrl(url, policy),

    async create(input) {
      const filter = checkFilter(input.filter, input.events);
      const url = await checked(input.url);
      const r = await store.create({
        url,
        events: input.events,
        description: input.description ?? null,
        enabled: input.enabled ?? true,
        headers: input.headers,
        rate_limit: input.rate_limit,
        filter,
      });
      logger.info({ webhookId: r.endpoint.id, events: r.endpoint.events }, `webhook endpoint ${r.endpoint.id} created`);
      return r;
    },
    list: () => store.list(),
    get: (id) => store.get(id),
    async update(id, patch) {
      let filter: EventFilter | null | undefined;
      if (patch.filter !== undefined || patch.events !== undefined) {
        // The filter must fit the subscription the endpoint will have after this change.
        const current = await store.get(id);
        if (!current) return null;
        filter = checkFilter(patch.filter !== undefined ? patch.filter : current.filter, patch.events ?? current.events);
        if (patch.filter === undefined) filter = undefined;
      }
      const url = patch.url === undefined ? undefined : await checked(patch.url);
      const r = await store.update(id, { ...patch, url, filter });
      if (r) logger.info({ webhookId: id, fields: Object.keys(patch) }, `webhook endpoint ${id} updated`);
      return r;
    },
    async remove(id) {
      const r = await store.remove(id);
      if (r) logger.info({ webhookId: id }, `webhook endpoint ${id} deleted`);
      return r;
    },
    secret: (id) => store.secret(id),
    async rotateSecret(id) {
      const r = await store.rotate(id);
      if (r)
        logger.info(
          { webhookId: id },
          `webhook endpoint ${id} secret rotated; the previous one signs until ${r.previous_secret_expires_at}`,
        );
      return r;
    },
    reseal: (opts) => store.reseal(opts),
    disable,
    testEvent: (id) => createEvent({ type: 'webhook.test', data: { webhook_id: id, message: 'A test event from raqeem-relay' } }),
  };
  return plugin;
}
