/**
 * Per-endpoint rate limits (`rate_limit`, requests per second). The dispatcher asks the plugin before every
 * request (`TargetPlugin.pace`); a limited endpoint answers with the time its next request may start, and
 * the dispatcher keeps the rows queued until then: waiting spends no attempt and records nothing.
 *
 * Requests start at least `1000 / rate_limit` ms apart (no bursts), so no window of one second ever sees
 * more than `rate_limit` of them from this process. The limit is per process: N dispatchers on one database
 * may send up to N times the rate. A `429` with `Retry-After` still reschedules that delivery as always; the
 * limiter never brings a retry forward.
 */
import { z } from 'zod';

export const MAX_RATE_LIMIT = 10_000;

/** The request body's `rate_limit`: whole requests per second, or `null` for none. */
export const rateLimitSchema = z
  .number({ error: 'must be a whole number of requests per second, or null for no limit' })
  .int('must be a whole number of requests per second')
  .min(1, 'must be at least 1 request per second (null removes the limit)')
  .max(MAX_RATE_LIMIT, `must be at most ${MAX_RATE_LIMIT} requests per second`)
  .nullable()
  .describe('Requests per second to this endpoint; the rest wait without spending attempts. null: no limit');

export class Pacer {
  /** Earliest start of each key's next request (epoch ms). */
  private readonly next = new Map<string, number>();

  /**
   * May a request to `key` start at `now`? Null means yes, and books it; otherwise the time it may start.
   * Entries whose time has passed are dropped, so the map holds only keys sending right now.
   */
  take(key: string, ratePerSecond: number, now: number): number | null {
    const at = this.next.get(key);
    if (at !== undefined && at > now) return at;
    this.next.set(key, now + 1000 / ratePerSecond);
    if (this.next.size > 1024) for (const [k, t] of this.next) if (t <= now) this.next.delete(k);
    return null;
  }
}
