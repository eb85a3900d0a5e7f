/**
 * Forwards from the devices host (SPEC section 8). Every route answers 200 for a duplicate: the mentor
 * target retries, replays and reconciles with the same record ids, and a 4xx would kill the delivery.
 */
import { Router } from 'express';
import type { Request } from 'express';
import { z } from 'zod';
import type { Database } from '../../../lib/db.js';
import { HttpProblem, parseOr422, requireJson } from '../../../lib/http/problem.js';
import { jsonBody } from '../../../lib/http/body.js';
import { sniffImage } from '../../shared/images.js';
import { storeScreenshots } from '../store/screenshots.js';
import type { ScreenshotImageRow } from '../store/screenshots.js';
import type { RouteDoc } from '../../../lib/http/openapi.js';
import {
  activitySchema,
  alertSchema,
  deviceId,
  metricSchema,
  processArraySchema,
  processEnvelopeSchema,
  registrationSchema,
  screenshotSchema,
} from '../schemas.js';
import type { ProcessSnapshot } from '../schemas.js';
import { requireSignature } from '../../shared/signature.js';
import { registerDevice, replaceProcesses } from '../store/devices.js';
import { RECORD_KINDS, storeRecords } from '../store/records.js';
import type { RecordKindName } from '../store/records.js';

/** One record or an array of them; an array is validated whole, so a bad item stores nothing. */
function parseRecords<S extends z.ZodType>(schema: S, body: unknown): Array<z.output<S>> {
  return Array.isArray(body) ? parseOr422(z.array(schema), body) : [parseOr422(schema, body)];
}

const storeResult = z.object({
  status: z.literal('ok'),
  received: z.number().int(),
  stored: z.number().int(),
  duplicates: z.number().int(),
});

const INGEST: Array<{ path: string; kind: RecordKindName; schema: z.ZodType; summary: string }> = [
  { path: '/devices/metrics', kind: 'metrics', schema: metricSchema, summary: 'Store forwarded metrics (one or an array)' },
  { path: '/devices/activity', kind: 'activities', schema: activitySchema, summary: 'Store forwarded activities (one or an array)' },
  { path: '/devices/alerts', kind: 'alerts', schema: alertSchema, summary: 'Store forwarded alerts (one or an array)' },
  {
    path: '/devices/screenshots',
    kind: 'screenshots',
    schema: screenshotSchema,
    summary:
      'Store forwarded screenshot records (one or an array), each optionally with its image (`image_base64`, PNG/JPEG/WebP, at most SCREENSHOT_MAX_BYTES; the body may be that much larger than BODY_LIMIT)',
  },
];

/** Screenshot records may carry their image, so this route reads bodies beyond BODY_LIMIT itself. */
export const SCREENSHOT_INGEST_PATH = '/devices/screenshots';

export interface IngestLimits {
  /** `BODY_LIMIT`. */
  bodyLimit: number;
  /** `SCREENSHOT_MAX_BYTES`: the largest image a screenshot record may carry. */
  screenshotMaxBytes: number;
}

/** What one screenshot request may weigh: the record part (BODY_LIMIT) plus one largest image as base64. */
export const screenshotBodyLimit = ({ bodyLimit, screenshotMaxBytes }: IngestLimits): number =>
  bodyLimit + Math.ceil(screenshotMaxBytes / 3) * 4;

/**
 * Decode and check the images that came with screenshot records; the stored `content_type` is the one the
 * bytes show, not the one declared. Nothing is stored when one image is refused.
 */
function imagesOf(records: Array<Record<string, unknown>>, isArray: boolean, maxBytes: number): ScreenshotImageRow[] {
  const images: ScreenshotImageRow[] = [];
  records.forEach((r, i) => {
    const data = r.image_base64;
    delete r.image_base64;
    if (typeof data !== 'string') return;
    const path = isArray ? `[${i}].image_base64` : 'image_base64';
    const bytes = Buffer.from(data, 'base64');
    if (bytes.length > maxBytes) {
      throw new HttpProblem(413, `The screenshot image is larger than SCREENSHOT_MAX_BYTES (${maxBytes} bytes)`, [
        { path, message: `must decode to at most ${maxBytes} bytes` },
      ]);
    }
    const kind = sniffImage(bytes);
    if (!kind) {
      throw new HttpProblem(422, `The request body failed validation: ${path}`, [{ path, message: 'must be a PNG, JPEG or WebP image' }]);
    }
    r.content_type = kind.type;
    images.push({ screenshotid: String(r.screenshotid), contentType: kind.type, bytes });
  });
  return images;
}

/** Only images may take a screenshot body past BODY_LIMIT: everything else in it counts as usual. */
function refuseOverBodyLimit(req: Request, bodyLimit: number): void {
  const items: unknown[] = Array.isArray(req.body) ? req.body : [req.body];
  const imageChars = items.reduce<number>((n, item) => {
    const image = item && typeof item === 'object' ? (item as { image_base64?: unknown }).image_base64 : undefined;
    return n + (typeof image === 'string' ? image.length : 0);
  }, 0);
  if ((req.rawBody?.length ?? 0) - imageChars > bodyLimit) {
    throw new HttpProblem(413, `The request body is larger than the limit of ${bodyLimit} bytes (BODY_LIMIT; image_base64 aside)`);
  }
}

/** `POST /devices/{id}/alerts`: items may omit `deviceid`; one that names another device is refused. */
function alertsForDevice(req: Request): unknown {
  const deviceid = parseOr422(deviceId, req.params.id, 'path');
  const fill = (item: unknown) =>
    item && typeof item === 'object' && !Array.isArray(item) && (item as { deviceid?: unknown }).deviceid === undefined
      ? { ...item, deviceid }
      : item;
  const body = Array.isArray(req.body) ? req.body.map(fill) : fill(req.body);
  const records = parseRecords(alertSchema, body);
  const errors = records.flatMap((r, i) =>
    r.deviceid === deviceid
      ? []
      : [{ path: Array.isArray(req.body) ? `[${i}].deviceid` : 'deviceid', message: `must match the device in the path (${deviceid})` }],
  );
  if (errors.length > 0) throw new HttpProblem(422, `The request body failed validation: ${errors.map((e) => e.path).join(', ')}`, errors);
  return records;
}

function parseSnapshot(body: unknown): ProcessSnapshot {
  if (Array.isArray(body)) {
    const list = parseOr422(processArraySchema, body);
    const first = list[0]!;
    const processes = list.map(({ pid, process_name, cpu, memory, command_text }) => ({ pid, process_name, cpu, memory, command_text }));
    return { deviceid: first.deviceid, snapshotAt: first.snapshot_at, processes };
  }
  const env = parseOr422(processEnvelopeSchema, body);
  return { deviceid: env.deviceid, snapshotAt: env.snapshot_at, processes: env.processes };
}

export function ingestRouter(
  db: Database,
  signingSecret: string | undefined,
  limits: IngestLimits = { bodyLimit: 1024 * 1024, screenshotMaxBytes: 10 * 1024 * 1024 },
): Router {
  const router = Router();
  const signed = requireSignature(signingSecret);

  // The app-wide parser skips this path (the app lists it in `parsedByRouters`); the signature is over these bytes.
  router.post(SCREENSHOT_INGEST_PATH, requireJson, jsonBody({ limit: screenshotBodyLimit(limits) }), signed, async (req, res) => {
    refuseOverBodyLimit(req, limits.bodyLimit);
    const records = parseRecords(screenshotSchema, req.body) as Array<Record<string, unknown>>;
    const images = imagesOf(records, Array.isArray(req.body), limits.screenshotMaxBytes);
    res.json({ status: 'ok', ...(await storeScreenshots(db, records, images)) });
  });

  router.post('/devices/register', requireJson, signed, async (req, res) => {
    const reg = parseOr422(registrationSchema, req.body);
    const r = await registerDevice(db, reg);
    res.json({ status: 'ok', deviceid: r.deviceid, created: r.created, applied: r.applied });
  });

  for (const { path, kind, schema } of INGEST) {
    if (path === SCREENSHOT_INGEST_PATH) continue;
    router.post(path, requireJson, signed, async (req, res) => {
      const records = parseRecords(schema, req.body) as Array<Record<string, unknown>>;
      res.json({ status: 'ok', ...(await storeRecords(db, RECORD_KINDS[kind], records)) });
    });
  }

  router.post('/devices/:id/alerts', requireJson, signed, async (req, res) => {
    const records = alertsForDevice(req) as Array<Record<string, unknown>>;
    res.json({ status: 'ok', ...(await storeRecords(db, RECORD_KINDS.alerts, records)) });
  });

  router.post('/devices/processes', requireJson, signed, async (req, res) => {
    const r = await replaceProcesses(db, parseSnapshot(req.body));
    res.json({ status: 'ok', ...r });
  });

  return router;
}

const ok = (schema: z.ZodType) => ({ '200': { description: 'Stored (or already stored)', schema } });
const refused = {
  '401': { description: 'Missing or invalid signature (when MENTOR_SIGNING_SECRET is set)' },
  '422': { description: 'A field failed validation; nothing was stored' },
};

export const ingestRoutes: RouteDoc[] = [
  {
    method: 'post',
    path: '/devices/register',
    summary: 'Upsert a device; a registration older than the stored one is ignored',
    tags: ['ingest'],
    body: registrationSchema,
    responses: {
      ...ok(z.object({ status: z.literal('ok'), deviceid: z.string(), created: z.boolean(), applied: z.boolean() })),
      ...refused,
    },
  },
  ...INGEST.map(
    ({ path, schema, summary }): RouteDoc => ({
      method: 'post',
      path,
      summary,
      tags: ['ingest'],
      body: z.union([schema, z.array(schema)]),
      responses: { ...ok(storeResult), ...refused },
    }),
  ),
  {
    method: 'post',
    path: '/devices/:id/alerts',
    summary: 'Store forwarded alerts of one device (items may omit deviceid)',
    tags: ['ingest'],
    body: z.union([alertSchema.partial({ deviceid: true }), z.array(alertSchema.partial({ deviceid: true }))]),
    responses: { ...ok(storeResult), ...refused },
  },
  {
    method: 'post',
    path: '/devices/processes',
    summary: "Replace a device's process list unless an equal or newer snapshot is stored",
    tags: ['ingest'],
    body: z.union([processArraySchema, processEnvelopeSchema]),
    responses: {
      ...ok(z.object({ status: z.literal('ok'), deviceid: z.string(), replaced: z.boolean(), inserted: z.number().int() })),
      ...refused,
    },
  },
];
