/**
 * The linger rule (lib/dispatch/linger.ts) and the key queues that apply it. Each case fails if the rule
 * is removed or loosened: a streaming batching key must hold a partial batch, and nothing else may wait.
 */
import { describe, expect, it } from 'vitest';
import { lingerDecision } from '../lib/dispatch/linger.js';
import type { LingerInput } from '../lib/dispatch/linger.js';
import { KeyQueues } from '../lib/dispatch/keyQueues.js';
import type { Claimed } from '../lib/dispatch/keyQueues.js';
import { exponentialBackoff } from '../lib/retry.js';
import type { TargetPlugin } from '../lib/target.js';

const INTERVAL = 10;
const input = (over: Partial<LingerInput>): LingerInput => ({
  now: 1000,
  batch: { maxSize: 50 },
  queued: 3,
  inflightRequests: 0,
  lastSentAt: undefined,
  lingerSince: null,
  claimIntervalMs: INTERVAL,
  ...over,
});

describe('lingerDecision', () => {
  it('holds a partial batch while one of the key’s requests is out', () => {
    expect(lingerDecision(input({ inflightRequests: 1 }))).toEqual({ send: false, since: 1000, until: 1000 + INTERVAL });
  });

  it('holds a partial batch when the key sent less than claimIntervalMs ago, with nothing in flight', () => {
    expect(lingerDecision(input({ lastSentAt: 1000 - INTERVAL + 1 }))).toEqual({ send: false, since: 1000, until: 1000 + INTERVAL });
  });

  it('sends at once for an idle key: no request out, none sent recently', () => {
    expect(lingerDecision(input({}))).toEqual({ send: true });
    expect(lingerDecision(input({ lastSentAt: 1000 - INTERVAL }))).toEqual({ send: true });
  });

  it('sends a full batch at once, even under a stream', () => {
    expect(lingerDecision(input({ inflightRequests: 1, queued: 50 }))).toEqual({ send: true });
    expect(lingerDecision(input({ inflightRequests: 1, queued: 51 }))).toEqual({ send: true });
  });

  it('ends the hold claimIntervalMs after it began', () => {
    expect(lingerDecision(input({ inflightRequests: 1, lingerSince: 995 }))).toEqual({ send: false, since: 995, until: 995 + INTERVAL });
    expect(lingerDecision(input({ inflightRequests: 1, lingerSince: 1000 - INTERVAL }))).toEqual({ send: true });
    expect(lingerDecision(input({ inflightRequests: 1, lingerSince: 900 }))).toEqual({ send: true });
  });

  it('never holds for a plugin that does not batch', () => {
    expect(lingerDecision(input({ batch: undefined, inflightRequests: 3, lastSentAt: 999, queued: 1 }))).toEqual({ send: true });
  });
});

const options = { concurrency: 2, queueDepth: 4, requestTimeoutMs: 1000, leaseMs: 5000, claimIntervalMs: INTERVAL };
const batching: TargetPlugin = {
  name: 'mentor',
  retry: exponentialBackoff({ retries: 3, baseMs: 1000 }),
  batch: { maxSize: 3, key: (e) => e.type },
  route: () => [{ endpointId: null }],
  prepare: () => ({ url: 'http://x', headers: {}, body: '' }),
};
let nextId = 0;
const row = (type = 'metric.submitted', leaseUntil = 1_000_000): Claimed => {
  nextId += 1;
  return {
    id: nextId,
    event_id: `e${nextId}`,
    event_type: type,
    deviceid: 'd',
    target: 'mentor',
    endpoint_id: null,
    circuit_key: 'mentor',
    attempts: 0,
    max_attempts: 4,
    next_attempt_at: 0,
    leaseUntil,
    event: { id: `e${nextId}`, type, deviceid: 'd', timestamp: '2024-01-01T00:00:00.000Z', data: {} },
  } as Claimed;
};

describe('KeyQueues', () => {
  it('applies the linger rule: a key that just sent holds its next partial batch, then sends it', () => {
    const q = new KeyQueues(options);
    q.push([row()], () => batching);
    const k = q.get('mentor')!;
    expect(q.linger('mentor', k, 1000).send).toBe(true);
    const first = q.takeGroup('mentor', k, 1000);
    q.finish(k, first);
    q.push([row()], () => batching);
    expect(q.linger('mentor', k, 1002)).toEqual({ send: false, since: 1002, until: 1002 + INTERVAL });
    expect(q.linger('mentor', k, 1002 + INTERVAL).send).toBe(true);
    expect(k.lingerSince).toBeNull();
  });

  it('groups rows by batch key, up to a full batch, and counts them in flight', () => {
    const q = new KeyQueues(options);
    q.push([row('a'), row('b'), row('a'), row('a'), row('a')], () => batching);
    const k = q.get('mentor')!;
    const g = q.takeGroup('mentor', k, 0);
    expect(g.map((r) => r.event_type)).toEqual(['a', 'a', 'a']);
    expect(k.queue.map((r) => r.event_type)).toEqual(['b', 'a']);
    expect([k.inflightRequests, k.inflightRows, q.localRows()]).toEqual([1, 3, 5]);
    q.finish(k, g);
    expect(q.localRows()).toBe(2);
  });

  it('caps a key at concurrency x max(batch size, queueDepth)', () => {
    const q = new KeyQueues(options);
    expect(q.cap(batching)).toBe(2 * 4);
    expect(q.cap({ ...batching, concurrency: 1, batch: { maxSize: 10, key: () => null } })).toBe(10);
  });

  it('calls a key stocked while it holds more than half its cap, queued and in flight together', () => {
    const q = new KeyQueues(options);
    expect(q.stocked('mentor')).toBe(false);
    q.push([row(), row(), row(), row()], () => batching);
    expect(q.stocked('mentor')).toBe(false);
    q.push([row()], () => batching);
    expect(q.stocked('mentor')).toBe(true);
    const k = q.get('mentor')!;
    const sent = q.takeGroup('mentor', k, 0);
    expect(q.stocked('mentor')).toBe(true);
    q.finish(k, sent);
    expect(q.stocked('mentor')).toBe(false);
  });

  it('drops queued rows whose lease cannot cover a request started now', () => {
    const q = new KeyQueues(options);
    const stale = row('a', 1000 + 1000 + 1000);
    const fresh = row('a', 1000 + 1000 + 2000 + 1);
    q.push([stale, fresh], () => batching);
    expect(q.dropStale(q.get('mentor')!, 1000)).toEqual([stale.id]);
    expect(q.get('mentor')!.queue).toEqual([fresh]);
  });
});
