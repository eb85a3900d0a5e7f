/**
 * A generic HTTP target: a route map from event type to path on one base URL, optional Standard Webhooks
 * signing, `Idempotency-Key` on every request, and optional batching of same-route events into one array.
 */
import { createHash } from 'node:crypto';
import type { CircuitOptions } from '../lib/circuit.js';
import type { RelayEvent } from '../lib/events.js';
import type { RetryPolicy } from '../lib/retry.js';
import { signHeaders } from '../lib/signing.js';
import { SECRET_HINT, secretProblem } from '../lib/signingSecret.js';
import { defaultClassify } from '../lib/target.js';
import type { TargetPlugin, Verdict } from '../lib/target.js';
import type { OutboundResponse } from '../lib/transport.js';

/** Where and how events of one type are sent. */
export interface HttpRoute {
  /** Path appended to the base URL, or a function of the event (for ids in the path). */
  path: string | ((event: RelayEvent) => string);
  /** Several events of this type may travel in one request as a JSON array. */
  batch?: boolean;
  /** Request body for one event (default: `event.data`). */
  body?: (event: RelayEvent) => unknown;
}

/** Options of {@link httpTarget}. */
export interface HttpTargetOptions {
  name: string;
  baseUrl: string;
  routes: Record<string, HttpRoute | string>;
  retry: RetryPolicy;
  /** Sign each request (Standard Webhooks headers) with this secret. */
  signingSecret?: string;
  /** Event types to leave out (a toggle that is off); checked at publish time. */
  enabled?: (type: string) => boolean;
  headers?: Record<string, string>;
  concurrency?: number;
  circuit?: Partial<CircuitOptions>;
  /** Largest batch for batchable routes (default 100). */
  maxBatchSize?: number;
  /** What a response means (default: `defaultClassify`). */
  classify?: (res: OutboundResponse) => Verdict;
}

/** A stable id for a batch: the same events give the same key, on every retry. */
export function batchId(events: RelayEvent[]): string {
  if (events.length === 1) return events[0]!.id;
  const h = createHash('sha256');
  for (const e of events) h.update(e.id).update('\n');
  return `batch_${h.digest('base64url').slice(0, 32)}`;
}

/** A target that posts each event to `baseUrl` + its route's path (see {@link HttpTargetOptions}). */
export function httpTarget(o: HttpTargetOptions): TargetPlugin {
  // Refused here, at start, rather than as every request failing (malformed) or a guessable key (short).
  const secretIssue = o.signingSecret ? secretProblem(o.signingSecret) : null;
  if (secretIssue) throw new Error(`target ${o.name}: signingSecret ${secretIssue}; ${SECRET_HINT}`);
  const routes = new Map<string, HttpRoute>(Object.entries(o.routes).map(([type, r]) => [type, typeof r === 'string' ? { path: r } : r]));
  const base = o.baseUrl.replace(/\/+$/, '');
  const enabled = o.enabled ?? (() => true);
  const bodyOf = (route: HttpRoute, e: RelayEvent) => (route.body ? route.body(e) : e.data);
  return {
    name: o.name,
    retry: o.retry,
    concurrency: o.concurrency,
    circuit: o.circuit,
    classify: o.classify ?? defaultClassify,
    batch: {
      maxSize: o.maxBatchSize ?? 100,
      key: (e) => (routes.get(e.type)?.batch ? e.type : null),
    },
    route(event) {
      return routes.has(event.type) && enabled(event.type) ? [{ endpointId: null }] : [];
    },
    prepare(events) {
      const first = events[0]!;
      const route = routes.get(first.type);
      if (!route) throw new Error(`no route for ${first.type}`);
      const path = typeof route.path === 'function' ? route.path(first) : route.path;
      const payload = events.length > 1 ? events.map((e) => bodyOf(route, e)) : bodyOf(route, first);
      const body = JSON.stringify(payload);
      const id = batchId(events);
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'raqeem-relay',
        'idempotency-key': id,
        'x-relay-event-type': first.type,
        ...o.headers,
      };
      if (events.length > 1) headers['x-relay-event-ids'] = events.map((e) => e.id).join(',');
      if (first.requestId) headers['x-request-id'] = first.requestId;
      if (o.signingSecret) Object.assign(headers, signHeaders({ id, body, secret: o.signingSecret }));
      return { url: base + path, headers, body };
    },
  };
}
