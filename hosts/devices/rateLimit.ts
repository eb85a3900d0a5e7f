/**
 * `DEVICE_RATE_LIMIT`: a token bucket per device id on the device's own routes (`/devices/{id}/...`), so one
 * runaway agent cannot take the host's write capacity from the others. Each bucket holds one second's worth
 * of requests (at least one) and refills continuously; an empty bucket is a 429 with `Retry-After`.
 * In memory and per process: behind several hosts the effective limit is the sum, which is what an operator
 * sizing one host expects.
 */
import type { RequestHandler } from 'express';
import { HttpProblem } from '../../lib/http/problem.js';
import { DEVICE_ID_PATTERN, normalizeId } from './schemas.js';

interface Bucket {
  tokens: number;
  at: number;
}

/** Past this many buckets, full ones (idle devices) are dropped: an id sweep cannot grow memory without bound. */
const MAX_BUCKETS = 10_000;

/** Mount on `/devices/:id`; `rate` is requests per second. Counts the writes under one device. */
export function deviceRateLimit(rate: number, now: () => number = Date.now): RequestHandler {
  const capacity = Math.max(1, rate);
  const buckets = new Map<string, Bucket>();
  const refill = (b: Bucket, t: number) => {
    b.tokens = Math.min(capacity, b.tokens + ((t - b.at) / 1000) * rate);
    b.at = t;
  };
  return (req, _res, next) => {
    // Ingest only (writes under the device: metrics, processes, ...); reads and `/devices/register` are not counted.
    if (req.method === 'GET' || req.method === 'HEAD' || req.path === '/') return next();
    const raw = req.params.id;
    // Not a device id: the route answers 422, nothing to count.
    if (typeof raw !== 'string' || !DEVICE_ID_PATTERN.test(raw)) return next();
    const id = normalizeId(raw);
    const t = now();
    let b = buckets.get(id);
    if (!b) {
      if (buckets.size >= MAX_BUCKETS) {
        for (const [k, v] of buckets) {
          refill(v, t);
          if (v.tokens >= capacity) buckets.delete(k);
        }
      }
      b = { tokens: capacity, at: t };
      buckets.set(id, b);
    } else refill(b, t);
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return next();
    }
    const wait = Math.max(1, Math.ceil((1 - b.tokens) / rate));
    next(
      new HttpProblem(429, `Device ${id} is over DEVICE_RATE_LIMIT (${rate} requests per second); retry after ${wait} s`, undefined, {
        'Retry-After': String(wait),
      }),
    );
  };
}
