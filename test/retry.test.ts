import { describe, expect, it } from 'vitest';
import { exponentialBackoff, nextDelayMs, parseRetryAfter, scheduleBackoff } from '../lib/retry.js';
import { WEBHOOK_SCHEDULE_MS } from '../plugins/webhooks/index.js';

describe('retry schedules', () => {
  it('gives the seed schedule 1 s, 2 s, 4 s for three retries', () => {
    const p = exponentialBackoff({ retries: 3, baseMs: 1000 });
    expect(p.maxAttempts).toBe(4);
    expect([1, 2, 3].map((n) => nextDelayMs(p, n, null, () => 0.5))).toEqual([1000, 2000, 4000]);
  });

  it('jitters by at most 20% either way', () => {
    const p = exponentialBackoff({ retries: 3, baseMs: 1000 });
    expect(nextDelayMs(p, 1, null, () => 0)).toBe(800);
    expect(nextDelayMs(p, 1, null, () => 0.999999)).toBe(1200);
  });

  it('uses the webhook schedule: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h', () => {
    const p = scheduleBackoff(WEBHOOK_SCHEDULE_MS, { jitter: 0 });
    expect(p.maxAttempts).toBe(8);
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => nextDelayMs(p, n, null))).toEqual([5e3, 3e5, 18e5, 72e5, 18e6, 36e6, 36e6]);
  });

  it('waits at least as long as Retry-After, capped', () => {
    const p = exponentialBackoff({ retries: 3, baseMs: 100, jitter: 0, retryAfterCapMs: 60_000 });
    expect(nextDelayMs(p, 1, 5_000)).toBe(5_000);
    expect(nextDelayMs(p, 1, 3_600_000)).toBe(60_000);
    expect(nextDelayMs(p, 1, 10)).toBe(100);
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT'))).toBe(10_000);
    expect(parseRetryAfter('soon')).toBeNull();
    expect(parseRetryAfter(undefined)).toBeNull();
  });
});
