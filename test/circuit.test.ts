import { describe, expect, it } from 'vitest';
import { CircuitBreakers } from '../lib/circuit.js';
import type { CircuitTransition } from '../lib/circuit.js';

const opts = { failureThreshold: 3, cooldownMs: 1000, maxCooldownMs: 4000 };

describe('CircuitBreakers', () => {
  it('opens after the threshold of consecutive failures', () => {
    const c = new CircuitBreakers(() => opts);
    c.recordFailure('m', 0);
    c.recordFailure('m', 0);
    expect(c.state('m', 0)).toBe('closed');
    c.recordFailure('m', 0);
    expect(c.state('m', 0)).toBe('open');
    expect(c.blockedKeys(10)).toEqual(['m']);
  });

  it('a success resets the count', () => {
    const c = new CircuitBreakers(() => opts);
    c.recordFailure('m', 0);
    c.recordFailure('m', 0);
    c.recordSuccess('m');
    c.recordFailure('m', 0);
    expect(c.state('m', 0)).toBe('closed');
  });

  it('goes half-open after the cool-down and hands out exactly one probe', () => {
    const c = new CircuitBreakers(() => opts);
    for (let i = 0; i < 3; i++) c.recordFailure('m', 0);
    expect(c.takeProbes(999)).toEqual([]);
    expect(c.takeProbes(1000)).toEqual(['m']);
    expect(c.takeProbes(1001)).toEqual([]);
    expect(c.state('m', 1001)).toBe('half-open');
  });

  it('a failed probe re-opens with a doubled, capped cool-down; a good one closes', () => {
    const events: CircuitTransition[] = [];
    const c = new CircuitBreakers(
      () => opts,
      (t) => events.push(t),
    );
    for (let i = 0; i < 3; i++) c.recordFailure('m', 0);
    c.takeProbes(1000);
    c.recordFailure('m', 1000);
    expect(c.state('m', 2999)).toBe('open');
    expect(c.state('m', 3000)).toBe('half-open');
    c.takeProbes(3000);
    c.recordFailure('m', 3000);
    c.takeProbes(7000);
    c.recordFailure('m', 7000);
    expect(c.nextChangeAt()).toBe(11_000);
    c.takeProbes(11_000);
    c.recordSuccess('m');
    expect(c.state('m')).toBe('closed');
    expect(events.map((e) => e.to)).toEqual(['open', 'half-open', 'open', 'half-open', 'open', 'half-open', 'open', 'half-open', 'closed']);
  });

  it('stays half-open when a probe finds nothing to send, and probes again next time', () => {
    const c = new CircuitBreakers(() => opts);
    for (let i = 0; i < 3; i++) c.recordFailure('m', 0);
    expect(c.takeProbes(1000)).toEqual(['m']);
    c.probeSkipped('m');
    expect(c.state('m', 1000)).toBe('half-open');
    expect(c.takeProbes(1001)).toEqual(['m']);
  });

  it('keeps keys apart', () => {
    const c = new CircuitBreakers(() => opts);
    for (let i = 0; i < 3; i++) c.recordFailure('webhooks:a', 0);
    expect(c.state('webhooks:a', 0)).toBe('open');
    expect(c.state('webhooks:b', 0)).toBe('closed');
  });
});
