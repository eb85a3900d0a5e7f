/**
 * The linger rule, pure (no timers, no I/O) so it is tested on its own: should a batching key hold back a
 * partial batch? Only under a stream — one of its requests is out, or it sent one less than
 * `claimIntervalMs` ago — and for at most `claimIntervalMs`: rows that arrive meanwhile, one per commit, then
 * share one request instead of one each. A key that was idle sends at once, so a lone record pays no added
 * latency. On SQLite, without the "sent less than claimIntervalMs ago" half, a stream whose requests each
 * returned before the next commit cost one mentor request per record.
 */

export interface LingerInput {
  now: number;
  /** The plugin's batching, if it batches. */
  batch: { maxSize: number } | undefined;
  /** Rows queued for the key. */
  queued: number;
  /** The key's requests out now. */
  inflightRequests: number;
  /** When the key last sent a request, if recently. */
  lastSentAt: number | undefined;
  /** When the current hold began (null: not holding). */
  lingerSince: number | null;
  claimIntervalMs: number;
}

export type LingerDecision = { send: true } | { send: false; since: number; until: number };

export function lingerDecision(i: LingerInput): LingerDecision {
  const streaming = i.inflightRequests > 0 || (i.lastSentAt !== undefined && i.now - i.lastSentAt < i.claimIntervalMs);
  if (!i.batch || !streaming || i.queued >= i.batch.maxSize) return { send: true };
  const since = i.lingerSince ?? i.now;
  const until = since + i.claimIntervalMs;
  if (until - i.now <= 0) return { send: true };
  return { send: false, since, until };
}
