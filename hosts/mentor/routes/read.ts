/**
 * The dashboards' read API. Lists are newest first with `limit` 1..1000 (default 100). Records of a device
 * the mentor has not seen register yet are still listed: forwards are only best-effort ordered.
 *
 * Raqeem's dashboard reads two names ours did not have: devices carry `id` (= `deviceid`), and screenshot
 * records carry `url` / `screenshot_url`, a link to the image the mentor holds (`GET /screenshots/{id}`),
 * signed when MENTOR_READ_TOKEN protects the read API (hosts/mentor/screenshotLinks.ts).
 */
import { Router } from 'express';
import type { Request, RequestHandler } from 'express';
import { bearerToken, requireBearer, tokensEqual, unauthorized } from '../../../lib/http/auth.js';
import { z } from 'zod';
import type { Database } from '../../../lib/db.js';
import { notFound, parseOr422 } from '../../../lib/http/problem.js';
import type { RouteDoc } from '../../../lib/http/openapi.js';
import { activitiesQuerySchema, deviceId, listQuerySchema } from '../schemas.js';
import { listCommands } from '../store/commands.js';
import { getDevice, listDevices, listProcesses } from '../store/devices.js';
import { listActivities, listRecords, RECORD_KINDS } from '../store/records.js';
import { getScreenshotImage, listScreenshots } from '../store/screenshots.js';
import { screenshotLinks } from '../screenshotLinks.js';
import type { ScreenshotLinks } from '../screenshotLinks.js';
import { extensionOf } from '../../shared/images.js';
import type { Row } from '../store/sql.js';

const limitOf = (req: Request) => parseOr422(listQuerySchema, req.query, 'query').limit;

/** An id that cannot be a device is simply not found (it cannot have been stored). */
function deviceOf(req: Request): string {
  const r = deviceId.safeParse(req.params.id);
  if (!r.success) throw notFound(`Device ${JSON.stringify(String(req.params.id).slice(0, 140))} not found`);
  return r.data;
}

/** `id` beside `deviceid`, as Raqeem's dashboard selects devices by it. */
const withId = (device: Row): Row => ({ id: device.deviceid, ...device });

/** A plausible `Host` header (name or IP literal, optional port); anything else yields relative links. */
const HOST = /^(?:[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?$/;

export interface ReadOptions {
  /** `MENTOR_READ_TOKEN`: every read route requires it as a bearer token. */
  readToken?: string;
  /** `MENTOR_PUBLIC_URL`: the base of screenshot links; unset = this request's scheme and Host. */
  publicUrl?: string;
}

/** How screenshot records get their links: the origin browsers reach the mentor at, and the signer. */
interface LinkContext {
  links: ScreenshotLinks;
  publicUrl: string | undefined;
}

function baseUrlOf(req: Request, publicUrl: string | undefined): string {
  if (publicUrl) return publicUrl;
  const host = req.get('host');
  return host && HOST.test(host) ? `${req.protocol}://${host}` : '';
}

/**
 * `url` (and Raqeem's `screenshot_url`): the mentor's own link when it holds the image; the record's `path`
 * when that is already a web address (an image stored elsewhere); otherwise null (metadata only).
 */
async function screenshotsWithUrls(db: Database, id: string, limit: number, req: Request, ctx: LinkContext): Promise<Row[]> {
  const base = baseUrlOf(req, ctx.publicUrl);
  const now = Date.now();
  return (await listScreenshots(db, id, limit)).map(({ record, hasImage }) => {
    const path = typeof record.path === 'string' ? record.path : '';
    const url = hasImage ? base + ctx.links.path(String(record.screenshotid), now) : /^https?:\/\//i.test(path) ? path : null;
    return { ...record, url, screenshot_url: url };
  });
}

const LISTS = {
  metrics: (db: Database, id: string, limit: number) => listRecords(db, RECORD_KINDS.metrics, id, limit),
  activities: (db: Database, id: string, limit: number) => listRecords(db, RECORD_KINDS.activities, id, limit),
  alerts: (db: Database, id: string, limit: number) => listRecords(db, RECORD_KINDS.alerts, id, limit),
  screenshots: screenshotsWithUrls,
  processes: (db: Database, id: string, limit: number) => listProcesses(db, id, limit),
  commands: (db: Database, id: string, limit: number) => listCommands(db, id, limit),
} as const;

/** Images are immutable (one per record id): cached up to a day, or for what is left of the link's life. */
const IMAGE_MAX_AGE_SEC = 86_400;

export function readRouter(db: Database, options: ReadOptions = {}): Router {
  const { readToken, publicUrl } = options;
  const router = Router();
  const guard: RequestHandler = readToken ? requireBearer(readToken, 'MENTOR_READ_TOKEN') : (_req, _res, next) => next();
  const ctx: LinkContext = { links: screenshotLinks(readToken), publicUrl };

  router.get('/devices', guard, async (req, res) => {
    res.json((await listDevices(db, limitOf(req))).map(withId));
  });

  router.get('/devices/:id', guard, async (req, res) => {
    const id = deviceOf(req);
    const device = await getDevice(db, id);
    if (!device) throw notFound(`Device ${id} not found`);
    res.json(withId(device));
  });

  for (const [name, list] of Object.entries(LISTS)) {
    router.get(`/devices/:id/${name}`, guard, async (req, res) => {
      const limit = limitOf(req);
      res.json(await list(db, deviceOf(req), limit, req, ctx));
    });
  }

  // An <img> sends no Authorization: with MENTOR_READ_TOKEN the signed link (or the bearer token) opens it.
  router.get('/screenshots/:screenshotid', async (req, res) => {
    const id = String(req.params.screenshotid);
    let cacheFor = IMAGE_MAX_AGE_SEC;
    if (readToken) {
      const token = bearerToken(req.headers.authorization);
      if (token !== undefined) {
        if (!tokensEqual(token, readToken)) throw unauthorized('The bearer token is not valid', 'invalid_token');
      } else {
        const q = req.query as { expires?: unknown; sig?: unknown };
        const verdict = ctx.links.check(id, q);
        if (verdict === 'missing')
          throw unauthorized(
            "Authentication required: open the screenshot record's url (a signed link), or send Authorization: Bearer <MENTOR_READ_TOKEN>",
          );
        if (verdict === 'expired')
          throw unauthorized('This screenshot link has expired: read the screenshot list again for a fresh url', 'invalid_token');
        if (verdict === 'invalid') throw unauthorized('This screenshot link is not valid (expires or sig was altered)', 'invalid_token');
        cacheFor = Math.min(cacheFor, ctx.links.remaining(q));
      }
    }
    const image = id.length <= 128 ? await getScreenshotImage(db, id) : null;
    if (!image)
      throw notFound('Screenshot image not found: the mentor holds no image for this screenshot (unknown, or recorded as metadata only)');
    res.type(image.contentType);
    res.setHeader('Cache-Control', `private, max-age=${cacheFor}, immutable`);
    // Access is by token or signed link, never by ambient credentials, so another origin's <img> may load it
    // (helmet's default, same-origin, would block a dashboard served from elsewhere).
    res.setHeader('Cross-Origin-Resource-Policy', 'cross-origin');
    const name = id.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 80);
    res.setHeader('Content-Disposition', `inline; filename="screenshot-${name}.${extensionOf(image.contentType)}"`);
    res.send(image.bytes);
  });

  router.get('/activities', guard, async (req, res) => {
    const q = parseOr422(activitiesQuerySchema, req.query, 'query');
    res.json(await listActivities(db, q.limit, q.deviceid));
  });

  return router;
}

const list = (description: string): RouteDoc['responses'] => ({
  '200': { description, schema: z.array(z.record(z.string(), z.unknown())) },
  '401': { description: 'MENTOR_READ_TOKEN is set and the request lacks Authorization: Bearer <MENTOR_READ_TOKEN>' },
  '422': { description: 'limit is not a whole number from 1 to 1000' },
});

export const readRoutes: RouteDoc[] = [
  {
    method: 'get',
    path: '/devices',
    summary: 'Devices, most recently seen first',
    tags: ['read'],
    query: listQuerySchema,
    responses: list('Devices, each with `id` (the same as `deviceid`)'),
  },
  {
    method: 'get',
    path: '/devices/:id',
    summary: 'One device',
    tags: ['read'],
    params: { id: 'Device id' },
    responses: {
      '200': { description: 'The device, with `id` (the same as `deviceid`)', schema: z.record(z.string(), z.unknown()) },
      '404': { description: 'Unknown device' },
    },
  },
  {
    method: 'get',
    path: '/screenshots/:screenshotid',
    summary:
      "A screenshot's image, forwarded with its record (the records' `url`). With MENTOR_READ_TOKEN: the signed link's expires and sig, or the bearer token",
    tags: ['read'],
    params: { screenshotid: 'Screenshot id (the origin record id)' },
    query: z.object({
      expires: z.string().optional().describe('Unix seconds; part of the signed link when MENTOR_READ_TOKEN is set'),
      sig: z.string().optional().describe('HMAC of the id and expires; part of the signed link'),
    }),
    responses: {
      '200': { description: 'The image (PNG, JPEG or WebP), Cache-Control private and immutable', contentType: 'image/*' },
      '401': { description: 'MENTOR_READ_TOKEN is set and the link is missing, altered or expired (or the bearer token is wrong)' },
      '404': { description: 'The mentor holds no image for this id' },
    },
  },
  ...Object.keys(LISTS).map(
    (name): RouteDoc => ({
      method: 'get',
      path: `/devices/:id/${name}`,
      summary: name === 'processes' ? "The device's current process list (busiest first)" : `The device's ${name}, newest first`,
      tags: ['read'],
      params: { id: 'Device id' },
      query: listQuerySchema,
      responses: list(
        name === 'screenshots'
          ? 'Screenshots, each with `url` and `screenshot_url`: the image at the mentor (signed when MENTOR_READ_TOKEN is set), the record path when it is an http(s) URL, else null'
          : name,
      ),
    }),
  ),
  {
    method: 'get',
    path: '/activities',
    summary: 'Activities of every device, newest first',
    tags: ['read'],
    query: activitiesQuerySchema,
    responses: list('Activities'),
  },
];
