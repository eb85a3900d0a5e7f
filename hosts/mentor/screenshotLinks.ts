/**
 * Links to the screenshot images the mentor holds, for dashboards' `<img src>`: an image request cannot
 * carry `Authorization`, so when the read API is protected (`MENTOR_READ_TOKEN`) each link carries its own
 * short-lived proof instead: `?expires=<unix seconds>&sig=<HMAC-SHA256(id, expires)>`, keyed by a key
 * derived from MENTOR_READ_TOKEN (the token itself never appears in a URL). Only a holder of the read token
 * gets links (they come with the read API's answers); a leaked link opens one image until it expires.
 *
 * Expiry is rounded up to a LINK_STEP_SEC boundary, so the link of one image stays the same for that long
 * and a dashboard that polls its lists keeps hitting the browser's cache instead of reloading every image.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** A link is valid for at least this long after it was handed out ... */
export const LINK_TTL_SEC = 3600;
/** ... and at most this much longer (the rounding that keeps links stable). */
export const LINK_STEP_SEC = 900;

export type LinkCheck = 'ok' | 'missing' | 'expired' | 'invalid';

export interface ScreenshotLinks {
  /** The image's path with its query (`/screenshots/<id>?expires=...&sig=...`, no query when unprotected). */
  path(screenshotid: string, now?: number): string;
  /** Check the `expires` and `sig` query parameters of a request for the image. */
  check(screenshotid: string, query: { expires?: unknown; sig?: unknown }, now?: number): LinkCheck;
  /** Seconds the link checked at `now` stays valid (for Cache-Control). */
  remaining(query: { expires?: unknown }, now?: number): number;
}

export function screenshotLinks(readToken: string | undefined): ScreenshotLinks {
  const key = readToken ? createHmac('sha256', readToken).update('raqeem-relay screenshot links v1').digest() : undefined;
  const sign = (id: string, expires: number) => createHmac('sha256', key!).update(`${id}\n${expires}`).digest('base64url');
  const base = (id: string) => `/screenshots/${encodeURIComponent(id)}`;
  return {
    path(id, now = Date.now()) {
      if (!key) return base(id);
      const expires = (Math.floor(now / 1000 / LINK_STEP_SEC) + 1) * LINK_STEP_SEC + LINK_TTL_SEC;
      return `${base(id)}?expires=${expires}&sig=${sign(id, expires)}`;
    },
    check(id, query, now = Date.now()) {
      if (!key) return 'ok';
      if (query.expires === undefined && query.sig === undefined) return 'missing';
      if (typeof query.expires !== 'string' || typeof query.sig !== 'string' || !/^\d{1,12}$/.test(query.expires)) return 'invalid';
      const expires = Number(query.expires);
      const expected = Buffer.from(sign(id, expires));
      const given = Buffer.from(query.sig);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid';
      return expires * 1000 > now ? 'ok' : 'expired';
    },
    remaining(query, now = Date.now()) {
      const expires = typeof query.expires === 'string' ? Number(query.expires) : NaN;
      return Number.isFinite(expires) ? Math.max(0, Math.floor(expires - now / 1000)) : 0;
    },
  };
}
