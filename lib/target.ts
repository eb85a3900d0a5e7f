/**
 * The target-plugin interface. A plugin is a plain object: it decides which deliveries an event needs,
 * turns events into an HTTP request, and says what a response means. The dispatcher does the rest.
 */
import type { Transaction } from 'sequelize';
import type { CircuitOptions } from './circuit.js';
import type { RelayEmitter } from './emitter.js';
import type { RelayEvent } from './events.js';
import type { Logger } from './logger.js';
import type { RelayMetrics } from './metrics.js';
import type { Migration } from './migrate.js';
import type { RetryPolicy } from './retry.js';
import type { OutboundRequest, OutboundResponse } from './transport.js';

/** What a response means: done, try again later (on the retry schedule), or never (dead now). */
export type Verdict = 'success' | 'retry' | 'permanent';

/** What `route` receives: the publishing transaction (read your tables through it). */
export interface RouteContext {
  transaction: Transaction | undefined;
}

/** What `prepare` receives: the endpoint the delivery is for (null for a target with one endpoint). */
export interface PrepareContext {
  endpointId: string | null;
}

/** What `onOutcome` is told after every request. */
export interface OutcomeInfo {
  endpointId: string | null;
  events: RelayEvent[];
  verdict: Verdict;
  statusCode: number | null;
  error: string | null;
  /** True when the delivery is now dead (retries exhausted or permanent). */
  dead: boolean;
}

/** What a plugin may use of the relay it is registered with (see `TargetPlugin.attach`). */
export interface PluginHost {
  readonly events: RelayEmitter;
  readonly logger: Logger;
  readonly metrics: RelayMetrics;
  /** Publish events through the relay's outbox in their own transaction (to `targets` only, when given). */
  publish(events: RelayEvent | RelayEvent[], options?: { targets?: string[] }): Promise<{ deliveries: number }>;
}

/** A target plugin: a plain object that routes events to deliveries, builds requests and classifies answers. */
export interface TargetPlugin {
  /** Stable name stored on each delivery row (`mentor`, `webhooks`, ...). */
  name: string;
  retry: RetryPolicy;
  /** Concurrent requests per circuit key. */
  concurrency?: number;
  circuit?: Partial<CircuitOptions>;
  /** Events with the same non-null batch key may be sent together in one request (an array body). */
  batch?: {
    maxSize: number;
    /** The event's batch key; null: always sent alone. */
    key(event: RelayEvent): string | null;
  };
  /**
   * Deliveries this event needs: none, one (`[{ endpointId: null }]`), or one per subscribed endpoint.
   * Runs inside the publish transaction.
   */
  route(event: RelayEvent, ctx: RouteContext): Promise<Array<{ endpointId: string | null }>> | Array<{ endpointId: string | null }>;
  /**
   * Store this event even when no target has a delivery for it, so that a delivery can be created later
   * (webhook replay and backfill). Such events are pruned with the delivery log (`retentionDays`). Runs
   * inside the publish transaction, only for events nothing routed.
   */
  retain?(event: RelayEvent, ctx: RouteContext): boolean | Promise<boolean>;
  /**
   * Build the request for one event, or for a batch of events sharing a batch key. Throw an error with
   * `permanent: true` when the request can never be built (the delivery is then dead at once); any other
   * error is retried on the plugin's schedule.
   */
  prepare(events: RelayEvent[], ctx: PrepareContext): Promise<OutboundRequest> | OutboundRequest;
  /** What a response means; the default treats 2xx as success, 408/429/5xx as retry, 3xx/4xx as permanent. */
  classify?(res: OutboundResponse): Verdict;
  /**
   * Pacing (for example a webhook endpoint's rate limit), asked just before each request to a key starts:
   * null to send now (the plugin counts it as sent), or the time before which no request for this endpoint
   * may start. The rows stay queued meanwhile, spending no attempt. Synchronous and cheap: it runs per request.
   */
  pace?(endpointId: string | null, now: number): number | null;
  /** Told after every request (for example, to disable a webhook endpoint on 410). Must not throw. */
  onOutcome?(info: OutcomeInfo): void | Promise<void>;
  /** Called once by the relay the plugin is registered with, from its constructor (to listen to its events). */
  attach?(host: PluginHost): void;
  /** Called once by `createRelay` after the migrations (for example, to encrypt secrets stored in plaintext). */
  init?(): Promise<void>;
  /** Schema this plugin needs (for example webhook endpoints), applied by `createRelay`. */
  migrations?: Migration[];
  /** Called once when the relay stops. */
  close?(): Promise<void>;
}

/** 2xx success; 408, 429 and 5xx retry; any other status permanent. */
export function defaultClassify(res: Pick<OutboundResponse, 'statusCode'>): Verdict {
  const s = res.statusCode;
  if (s >= 200 && s < 300) return 'success';
  if (s === 408 || s === 429 || s >= 500) return 'retry';
  return 'permanent';
}

/** Circuit key of a delivery: the target, or the target and one endpoint. */
export function circuitKey(target: string, endpointId: string | null): string {
  return endpointId === null ? target : `${target}:${endpointId}`;
}
