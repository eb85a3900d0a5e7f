/**
 * One attempt at sending a group of rows, in stages (as svix's worker does): prepare the request (the
 * plugin builds it), call the target, and classify what came back. The result is one typed value that
 * says how far it got, instead of a request, a response, an error and a flag that are each maybe null.
 * `handleAttempt` then applies what the result means: the circuit, each row's next status and attempt
 * record (planned by `outcome.ts`), logs, metrics and events.
 */
import type { Dispatcher as UndiciDispatcher } from 'undici';
import type { CircuitBreakers } from '../circuit.js';
import type { RelayEmitter } from '../emitter.js';
import { describeError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { RelayMetrics } from '../metrics.js';
import { observeOutcome, receiverReason } from '../observe.js';
import { planOutcomes } from '../outcome.js';
import { parseRetryAfter } from '../retry.js';
import { defaultClassify } from '../target.js';
import type { TargetPlugin, Verdict } from '../target.js';
import { send } from '../transport.js';
import type { OutboundResponse } from '../transport.js';
import type { Claimed } from './keyQueues.js';
import type { ResultBuffer } from './results.js';

interface Common {
  startedAt: number;
  durationMs: number;
  verdict: Verdict;
  /** What the attempt log and the logs say went wrong (null on success). */
  error: string | null;
  /**
   * Hand the rows back without spending an attempt: our own shutdown interrupted the call, or a circuit
   * probe found the target still down.
   */
  released: boolean;
}

export type AttemptResult =
  /** The plugin could not build the request: nothing was sent, so nothing is known of the target. */
  | (Common & { stage: 'prepare'; response: null })
  /** The request went out and no answer came back (connection error, timeout, our abort). */
  | (Common & { stage: 'call'; response: null; aborted: boolean })
  /** The target answered. */
  | (Common & { stage: 'response'; response: OutboundResponse; statusCode: number; retryAfterMs: number | null });

export interface AttemptContext {
  agent: UndiciDispatcher;
  requestTimeoutMs: number;
  /** Aborted when the dispatcher stops and its drain time is up. */
  signal: AbortSignal;
}

export async function attempt(plugin: TargetPlugin, rows: Claimed[], probe: boolean, ctx: AttemptContext): Promise<AttemptResult> {
  const startedAt = Date.now();
  const elapsed = () => Date.now() - startedAt;
  const events = rows.map((r) => r.event);
  const abortedError = () => (ctx.signal.aborted ? 'aborted: dispatcher stopping' : null);

  let req;
  try {
    req = await plugin.prepare(events, { endpointId: rows[0]!.endpoint_id });
  } catch (err) {
    // A plugin refuses to build a request it can never send (say, a deleted endpoint) with `permanent: true`.
    const refused = (err as { permanent?: unknown } | null)?.permanent === true;
    return {
      stage: 'prepare',
      response: null,
      startedAt,
      durationMs: elapsed(),
      verdict: refused ? 'permanent' : 'retry',
      error: abortedError() ?? describeError(err),
      released: ctx.signal.aborted,
    };
  }

  let response: OutboundResponse;
  try {
    response = await send(ctx.agent, req, ctx.requestTimeoutMs, ctx.signal);
  } catch (err) {
    const aborted = ctx.signal.aborted;
    return {
      stage: 'call',
      response: null,
      aborted,
      startedAt,
      durationMs: elapsed(),
      verdict: 'retry',
      error: abortedError() ?? describeError(err),
      // Interrupted by our own shutdown: not the target's fault. A probe that failed proves only that the
      // circuit must stay open; the rows wait for the next probe.
      released: aborted || probe,
    };
  }

  const statusCode = response.statusCode;
  const verdict = (plugin.classify ?? defaultClassify)(response);
  return {
    stage: 'response',
    response,
    statusCode,
    startedAt,
    durationMs: elapsed(),
    verdict,
    error: verdict === 'success' ? null : `HTTP ${statusCode}`,
    released: probe && statusCode >= 500,
    retryAfterMs: statusCode === 429 || statusCode === 503 ? parseRetryAfter(response.headers['retry-after']) : null,
  };
}

/**
 * What the attempt says about the target's health: only a request that went out counts, and our own
 * shutdown proves nothing.
 */
export function targetHealth(r: AttemptResult): 'down' | 'up' | null {
  if (r.stage === 'prepare') return null;
  if (r.stage === 'call') return r.aborted ? null : 'down';
  return r.statusCode >= 500 ? 'down' : 'up';
}

export interface HandleContext {
  circuits: CircuitBreakers;
  results: ResultBuffer;
  logger: Logger;
  metrics: RelayMetrics;
  emitter: RelayEmitter;
  /** Wake the dispatcher when the earliest rescheduled row comes due. */
  wakeAt(at: number): void;
  report(err: unknown, during: string): void;
}

export function handleAttempt(ctx: HandleContext, plugin: TargetPlugin, key: string, rows: Claimed[], result: AttemptResult): void {
  const health = targetHealth(result);
  if (health === 'down') ctx.circuits.recordFailure(key);
  else if (health === 'up') ctx.circuits.recordSuccess(key);

  const { verdict, released, error, durationMs } = result;
  const statusCode = result.stage === 'response' ? result.statusCode : null;
  const plan = planOutcomes(
    rows,
    {
      verdict,
      released,
      statusCode,
      error,
      responseBody: result.response?.body ?? null,
      retryAfterMs: result.stage === 'response' ? result.retryAfterMs : null,
      startedAt: result.startedAt,
      durationMs,
    },
    plugin.retry,
  );
  ctx.results.add(plan.attempts, plan.updates);
  if (plan.nextRetryAt !== null) ctx.wakeAt(plan.nextRetryAt);
  observeOutcome(ctx, {
    target: plugin.name,
    rows,
    verdict,
    released,
    statusCode,
    error,
    receiver: result.stage === 'response' && verdict !== 'success' ? receiverReason(result.response) : null,
    durationMs,
    dead: plan.dead,
    retrying: plan.retrying,
    circuitState: ctx.circuits.state(key),
  });
  if (plugin.onOutcome) {
    const info = {
      endpointId: rows[0]!.endpoint_id,
      events: rows.map((r) => r.event),
      verdict,
      statusCode,
      error,
      dead: plan.dead.length > 0,
    };
    Promise.resolve()
      .then(() => plugin.onOutcome!(info))
      .catch((err) => ctx.report(err, `${plugin.name}.onOutcome`));
  }
}
