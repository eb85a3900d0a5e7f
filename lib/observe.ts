/**
 * Logs, metrics and relay events for one request's outcome, in the seed's words: success at info, each
 * failed attempt at warn ("attempt 2/4"), dead at error with the reason. Every line names the event id,
 * type, device id and target; no line carries a secret (requests' headers are never logged). Circuit
 * transitions too: the gauge, a line, an event.
 */
import type { CircuitTransition } from './circuit.js';
import type { RelayEmitter } from './emitter.js';
import type { RelayEvent } from './events.js';
import type { Logger } from './logger.js';
import type { RelayMetrics } from './metrics.js';
import type { Verdict } from './target.js';
import type { OutboundResponse } from './transport.js';

/** Longest receiver explanation carried on a log line (the whole first 4 KiB stays in the attempt log). */
const REASON_MAX = 300;

/**
 * What a receiver said when it refused a request, for the failure's log line: the problem+json `detail`
 * (else `title`, `message` or `error`) or the first line of a text body, and its `WWW-Authenticate`. A
 * signing-secret mismatch then reads "HTTP 401 (receiver: Webhook signature rejected
 * (no_matching_signature) ...)" in the log instead of a bare status. Null when it said nothing.
 */
export function receiverReason(res: Pick<OutboundResponse, 'headers' | 'body'>): string | null {
  const parts: string[] = [];
  const said = bodyReason(res.body);
  if (said) parts.push(said);
  const auth = res.headers['www-authenticate'];
  const challenge = Array.isArray(auth) ? auth.join(', ') : auth;
  if (challenge) parts.push(`WWW-Authenticate: ${challenge}`);
  if (!parts.length) return null;
  const text = parts
    .join('; ')
    .replace(/\p{Cc}+/gu, ' ')
    .trim();
  return text.length > REASON_MAX ? `${text.slice(0, REASON_MAX - 3)}...` : text;
}

function bodyReason(body: string): string | null {
  const text = body.trim();
  if (!text) return null;
  try {
    const parsed: unknown = JSON.parse(text);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const o = parsed as Record<string, unknown>;
      for (const key of ['detail', 'title', 'message', 'error'] as const) if (typeof o[key] === 'string' && o[key]) return o[key];
    }
    return null;
  } catch {
    // Not JSON: an HTML error page says nothing useful in one line; plain text does.
    return text.startsWith('<') ? null : text.split('\n', 1)[0]!;
  }
}

export interface ObservedRow {
  id: number;
  event_id: string;
  event_type: string;
  deviceid: string | null;
  endpoint_id: string | null;
  attempts: number;
  max_attempts: number;
}

export interface Observation<R extends ObservedRow> {
  target: string;
  rows: R[];
  verdict: Verdict;
  released: boolean;
  statusCode: number | null;
  error: string | null;
  /** What the receiver said about a refusal ({@link receiverReason}); null when nothing or no answer. */
  receiver?: string | null;
  durationMs: number;
  dead: R[];
  retrying: R[];
  circuitState: string;
}

export function observeOutcome<R extends ObservedRow>(
  deps: { logger: Logger; metrics: RelayMetrics; emitter: RelayEmitter },
  o: Observation<R>,
): void {
  const { logger, metrics, emitter } = deps;
  const { target, rows } = o;
  const endpointId = rows[0]?.endpoint_id ?? null;
  metrics.duration.observe({ target, outcome: o.verdict }, o.durationMs / 1000);
  const dead = new Set(o.dead);
  for (const row of rows) {
    const fields = {
      eventId: row.event_id,
      type: row.event_type,
      deviceid: row.deviceid,
      target,
      endpointId,
      deliveryId: row.id,
      statusCode: o.statusCode,
      durationMs: o.durationMs,
    };
    const attempt = `attempt ${row.attempts + 1}/${row.max_attempts}`;
    const failure = o.receiver ? `${o.error} (receiver: ${o.receiver})` : o.error;
    const failed = o.receiver ? { error: o.error, receiver: o.receiver } : { error: o.error };
    if (o.verdict === 'success') {
      metrics.success.inc({ data_type: row.event_type, target });
      logger.info(fields, `forwarded ${row.event_type} to ${target}`);
    } else if (o.released) {
      logger.warn(
        { ...fields, error: o.error, circuit: o.circuitState },
        `${target} still unavailable, ${row.event_type} waits without spending an attempt`,
      );
    } else if (dead.has(row)) {
      metrics.failure.inc({ data_type: row.event_type, target });
      metrics.dead.inc({ data_type: row.event_type, target });
      const why = o.verdict === 'permanent' ? `permanent failure: ${failure}` : `retries exhausted (${attempt}): ${failure}`;
      logger.error({ ...fields, ...failed }, `forward of ${row.event_type} to ${target} is dead, ${why}`);
    } else {
      metrics.failure.inc({ data_type: row.event_type, target });
      logger.warn({ ...fields, ...failed }, `failed to forward ${row.event_type} to ${target} (${attempt}), will retry`);
    }
  }
  const info = (list: R[]) => ({
    deliveryIds: list.map((x) => x.id),
    eventIds: list.map((x) => x.event_id),
    eventType: list[0]!.event_type,
    target,
    endpointId,
    statusCode: o.statusCode,
    error: o.error,
    durationMs: o.durationMs,
    attempts: list.map((x) => x.attempts + (o.released ? 0 : 1)),
  });
  if (o.verdict === 'success') emitter.safeEmit('delivery:succeeded', info(rows));
  else if (!o.released) {
    if (o.retrying.length) emitter.safeEmit('delivery:failed', { ...info(o.retrying), willRetry: true });
    if (o.dead.length) {
      emitter.safeEmit('delivery:failed', { ...info(o.dead), willRetry: false });
      emitter.safeEmit('delivery:dead', info(o.dead));
    }
  }
}

/** A circuit changed state: the gauge (0 closed, 1 half-open, 2 open), a log line and a relay event. */
export function observeCircuit(deps: { logger: Logger; metrics: RelayMetrics; emitter: RelayEmitter }, t: CircuitTransition): void {
  const value = t.to === 'closed' ? 0 : t.to === 'half-open' ? 1 : 2;
  deps.metrics.circuit.set({ key: t.key }, value);
  const log = t.to === 'open' ? 'warn' : 'info';
  deps.logger[log]({ circuitKey: t.key, from: t.from, to: t.to }, `circuit for ${t.key} is ${t.to}`);
  deps.emitter.safeEmit(t.to === 'open' ? 'circuit:open' : t.to === 'half-open' ? 'circuit:half-open' : 'circuit:closed', t);
}

/**
 * An operational event: counted, logged (with `fields`, which the caller keeps free of URLs and secrets)
 * and emitted as `operational`. Publishing it to subscribers is the caller's business.
 */
export function observeOperational(
  deps: { logger: Logger; metrics: RelayMetrics; events: RelayEmitter },
  event: RelayEvent,
  fields: object,
  message: string,
  level: 'info' | 'warn' = 'warn',
): void {
  deps.metrics.operational.inc({ type: event.type });
  deps.logger[level]({ ...fields, eventId: event.id, type: event.type }, message);
  deps.events.safeEmit('operational', event);
}
