import { describe, expect, it } from 'vitest';
import { planOutcomes } from '../lib/outcome.js';
import type { RequestResult } from '../lib/outcome.js';
import { exponentialBackoff } from '../lib/retry.js';

const policy = exponentialBackoff({ retries: 3, baseMs: 1000, jitter: 0 });
const result = (over: Partial<RequestResult>): RequestResult => ({
  verdict: 'retry',
  released: false,
  statusCode: 500,
  error: 'HTTP 500',
  responseBody: 'x',
  retryAfterMs: null,
  startedAt: 0,
  durationMs: 5,
  ...over,
});
const row = (id: number, attempts: number) => ({ id, attempts, max_attempts: 4 });

describe('planOutcomes', () => {
  it('a success finishes every row of the request in one update', () => {
    const p = planOutcomes([row(1, 0), row(2, 2)], result({ verdict: 'success', statusCode: 200, error: null }), policy, 1000);
    expect(p.updates).toEqual([{ ids: [1, 2], status: 'succeeded', spent: 1, nextAttemptAt: null, statusCode: 200, error: null }]);
    expect(p.attempts.map((a) => [a.deliveryId, a.number, a.outcome])).toEqual([
      [1, 1, 'success'],
      [2, 3, 'success'],
    ]);
  });

  it('reschedules with backoff and kills the row whose attempts are spent', () => {
    const p = planOutcomes([row(1, 0), row(2, 1), row(3, 3)], result({}), policy, 1000);
    expect(p.updates).toEqual([
      { ids: [1], status: 'pending', spent: 1, nextAttemptAt: 2000, statusCode: 500, error: 'HTTP 500' },
      { ids: [2], status: 'pending', spent: 1, nextAttemptAt: 3000, statusCode: 500, error: 'HTTP 500' },
      { ids: [3], status: 'dead', spent: 1, nextAttemptAt: null, statusCode: 500, error: 'HTTP 500' },
    ]);
    expect(p.dead.map((r) => r.id)).toEqual([3]);
    expect(p.nextRetryAt).toBe(2000);
  });

  it('rows on the same attempt share one jittered delay', () => {
    const jittery = exponentialBackoff({ retries: 3, baseMs: 1000 });
    let n = 0;
    const p = planOutcomes([row(1, 0), row(2, 0), row(3, 0)], result({}), jittery, 0, () => (n++ % 2 ? 0.9 : 0.1));
    expect(p.updates).toHaveLength(1);
    expect(p.updates[0]!.ids).toEqual([1, 2, 3]);
  });

  it('a permanent answer kills at once', () => {
    const p = planOutcomes([row(1, 0)], result({ verdict: 'permanent', statusCode: 400, error: 'HTTP 400' }), policy, 0);
    expect(p.updates[0]).toMatchObject({ status: 'dead', spent: 1 });
    expect(p.attempts[0]!.outcome).toBe('permanent');
  });

  it('a released request spends nothing and is due again now', () => {
    const p = planOutcomes([row(1, 3)], result({ released: true, statusCode: null, error: 'ECONNREFUSED' }), policy, 777);
    expect(p.updates[0]).toMatchObject({ status: 'pending', spent: 0, nextAttemptAt: 777 });
    expect(p.attempts[0]).toMatchObject({ spent: false, outcome: 'released' });
    expect(p.dead).toEqual([]);
  });

  it('waits for Retry-After when it is longer than the backoff', () => {
    const p = planOutcomes([row(1, 0)], result({ statusCode: 429, retryAfterMs: 30_000 }), policy, 0);
    expect(p.updates[0]!.nextAttemptAt).toBe(30_000);
  });
});
