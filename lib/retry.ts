/**
 * Retry schedules. A policy answers two questions: how many attempts a delivery gets in all, and how long
 * to wait after the n-th failed attempt. Jitter (+-20% by default) spreads retries of a burst apart.
 */
export interface RetryPolicy {
  /** First try plus retries. */
  maxAttempts: number;
  /** Delay after `attemptsMade` failed attempts (1-based), before jitter. */
  baseDelayMs(attemptsMade: number): number;
  /** Fraction of the delay to spread either way. */
  jitter: number;
  /** Upper bound for a server's `Retry-After`. */
  retryAfterCapMs: number;
}

/** The seed's schedule: `base x 2^n`, so 1 s, 2 s, 4 s for three retries. */
export function exponentialBackoff(o: { retries: number; baseMs: number; jitter?: number; retryAfterCapMs?: number }): RetryPolicy {
  return {
    maxAttempts: o.retries + 1,
    baseDelayMs: (n) => o.baseMs * 2 ** (n - 1),
    jitter: o.jitter ?? 0.2,
    retryAfterCapMs: o.retryAfterCapMs ?? 10 * 60_000,
  };
}

/** A fixed list of delays between attempts, e.g. the webhook schedule. */
export function scheduleBackoff(delaysMs: readonly number[], o: { jitter?: number; retryAfterCapMs?: number } = {}): RetryPolicy {
  return {
    maxAttempts: delaysMs.length + 1,
    baseDelayMs: (n) => delaysMs[Math.min(n, delaysMs.length) - 1] ?? 0,
    jitter: o.jitter ?? 0.2,
    retryAfterCapMs: o.retryAfterCapMs ?? 6 * 3600_000,
  };
}

/** The delay before the next attempt: the policy's delay with jitter, or a longer `Retry-After` (capped). */
export function nextDelayMs(policy: RetryPolicy, attemptsMade: number, retryAfterMs: number | null, random = Math.random): number {
  const base = policy.baseDelayMs(attemptsMade);
  const jittered = base * (1 + policy.jitter * (2 * random() - 1));
  if (retryAfterMs === null) return Math.max(0, Math.round(jittered));
  return Math.max(Math.round(jittered), Math.min(retryAfterMs, policy.retryAfterCapMs));
}

/** `Retry-After` as delay-seconds or an HTTP date; null when absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | null {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return null;
  if (/^\d+(\.\d+)?$/.test(v.trim())) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}
