/**
 * `POST /devices/{id}/screenshots`: a multipart upload (`file`, png/jpeg/webp recognised by its magic bytes,
 * kept under `DATA_DIR/screenshots`) or JSON metadata for an image stored elsewhere. `GET /screenshots/{id}`
 * serves uploaded bytes. The file is written before the record commits and removed if the commit fails, so
 * a crash can leave an orphan file but never a record without its image.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Router } from 'express';
import type { Request, RequestHandler, Response } from 'express';
import multer from 'multer';
import { z } from 'zod';
import { createEvent, newEventId } from '../../../lib/events.js';
import { HttpProblem, notFound, parseOr422, toProblem } from '../../../lib/http/problem.js';
import type { RouteDoc } from '../../../lib/http/openapi.js';
import { screenshotRecord } from '../store/records.js';
import { listQuery, screenshotBody, screenshotFields, screenshotParams, screenshotUpload } from '../schemas.js';
import { requestIdOf } from '../../shared/app.js';
import { ingest } from '../store/ingest.js';
import type { DevicesContext } from '../store/ingest.js';
import { deviceGuards } from '../auth.js';
import { listNewest, requireDevice, select } from '../store/sql.js';
import type { Row } from '../store/sql.js';
import { deviceIdOf, limitOf } from './params.js';

const IMAGE_TYPES = [
  {
    type: 'image/png',
    ext: 'png',
    test: (b: Buffer) => b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])),
  },
  { type: 'image/jpeg', ext: 'jpg', test: (b: Buffer) => b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  {
    type: 'image/webp',
    ext: 'webp',
    test: (b: Buffer) => b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP',
  },
];

export const sniffImage = (bytes: Buffer) => IMAGE_TYPES.find((t) => t.test(bytes));

/** multer, with busboy's parse errors (plain Errors) turned into 400s instead of 500s. */
function uploadOne(maxBytes: number): RequestHandler {
  const upload = multer({
    storage: multer.memoryStorage(),
    limits: { fileSize: maxBytes, files: 1, fields: 10, fieldSize: 1024, parts: 12, headerPairs: 100 },
  }).single('file');
  return (req, res, next) =>
    upload(req, res, (err?: unknown) => {
      if (!err) return next();
      next(toProblem(err) ?? new HttpProblem(400, `The multipart body could not be read: ${(err as Error).message ?? 'malformed'}`));
    });
}

const created = (res: Response, row: Row) => {
  const { content_type: _ct, ...body } = screenshotRecord(row);
  res.status(201).json(body);
};

export function screenshotsRouter(ctx: DevicesContext): Router {
  const guard = deviceGuards(ctx);
  const { db, config } = ctx;
  const router = Router();
  const upload = uploadOne(config.screenshotMaxBytes);

  const store = (req: Request, deviceid: string, row: Row) =>
    ingest(ctx, deviceid, async (tx) => {
      const id = newEventId();
      tx.insert('screenshots', [{ ...row, event_id: id }]);
      const data = screenshotRecord(row);
      return { events: [createEvent({ id, type: 'screenshot.submitted', deviceid, data, requestId: requestIdOf(req) })], result: row };
    });

  router.post('/devices/:id/screenshots', guard.device, async (req, res, next) => {
    const deviceid = deviceIdOf(req);
    if (req.is('application/json')) {
      const body = parseOr422(screenshotBody, req.body);
      const row = {
        screenshotid: randomUUID(),
        deviceid,
        timestamp: Date.now(),
        path: body.path,
        resolution: body.resolution ?? null,
        size: body.size ?? null,
        content_type: null,
        file: null,
      };
      created(res, await store(req, deviceid, row));
      return;
    }
    if (!req.is('multipart/form-data')) {
      throw new HttpProblem(
        415,
        `Content-Type must be multipart/form-data or application/json (got ${JSON.stringify(req.headers['content-type'] ?? '')})`,
      );
    }
    // Refuse an unknown device before reading (and buffering) its upload.
    await requireDevice(db, deviceid);
    upload(req, res, (err?: unknown) => {
      if (err) return next(err);
      receiveUpload(req, deviceid).then((row) => created(res, row), next);
    });
  });

  async function receiveUpload(req: Request, deviceid: string): Promise<Row> {
    const file = req.file;
    if (!file)
      throw new HttpProblem(422, 'The request body failed validation: file', [{ path: 'file', message: 'an image file is required' }]);
    const kind = sniffImage(file.buffer);
    if (!kind) throw new HttpProblem(415, 'The uploaded file is not a PNG, JPEG or WebP image');
    const fields = parseOr422(screenshotFields, req.body ?? {});
    const screenshotid = randomUUID();
    const rel = `screenshots/${screenshotid}.${kind.ext}`;
    const abs = path.join(config.dataDir, rel);
    await mkdir(path.dirname(abs), { recursive: true });
    await writeFile(abs, file.buffer);
    const row = {
      screenshotid,
      deviceid,
      timestamp: Date.now(),
      path: rel,
      resolution: fields.resolution ?? null,
      size: file.size,
      content_type: kind.type,
      file: rel,
    };
    try {
      return await store(req, deviceid, row);
    } catch (err) {
      await unlink(abs).catch(() => undefined);
      throw err;
    }
  }

  router.get('/screenshots/:screenshotid', guard.admin, async (req, res) => {
    const parsed = screenshotParams.safeParse(req.params);
    if (!parsed.success) throw notFound('No such screenshot');
    const [row] = await select(db, 'SELECT * FROM screenshots WHERE screenshotid = :id', { id: parsed.data.screenshotid });
    if (!row) throw notFound('No such screenshot');
    if (!row.file) throw notFound('This screenshot was recorded as metadata only; its image is stored elsewhere (see its path)');
    const bytes = await readFile(path.join(config.dataDir, String(row.file))).catch(() => null);
    if (!bytes) throw notFound('The image file of this screenshot is missing from DATA_DIR');
    res.type(String(row.content_type)).setHeader('cache-control', 'private, max-age=86400, immutable');
    // Shown, never sniffed or run (nosniff and the CSP come from the base app); the name is ours (the id is a
    // validated UUID, the extension from the stored type), never the uploader's.
    const ext =
      ({ 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' } as Record<string, string>)[String(row.content_type)] ?? 'bin';
    res.setHeader('Content-Disposition', `inline; filename="screenshot-${parsed.data.screenshotid}.${ext}"`);
    res.send(bytes);
  });

  router.get('/devices/:id/screenshots', guard.deviceOrAdmin, async (req, res) => {
    const rows = await listNewest(db, 'screenshots', deviceIdOf(req), limitOf(req));
    res.json(rows.map(screenshotRecord));
  });

  return router;
}

const screenshotCreated = z.object({
  screenshotid: z.string(),
  deviceid: z.string(),
  timestamp: z.string(),
  path: z.string(),
  resolution: z.string().nullable(),
  size: z.int().nullable(),
});

export const screenshotsDocs: RouteDoc[] = [
  {
    method: 'post',
    path: '/devices/:id/screenshots',
    summary: 'Upload a screenshot (multipart `file`), or record one stored elsewhere (JSON); forwarded as `screenshot.submitted`',
    tags: ['telemetry'],
    body: screenshotUpload,
    bodyContentType: 'multipart/form-data',
    altBodies: { 'application/json': screenshotBody },
    responses: {
      '201': { description: 'Stored', schema: screenshotCreated },
      '413': { description: 'Larger than SCREENSHOT_MAX_BYTES' },
      '415': { description: 'Not a PNG, JPEG or WebP image' },
    },
  },
  {
    method: 'get',
    path: '/screenshots/:screenshotid',
    summary: 'The image bytes of an uploaded screenshot',
    tags: ['telemetry'],
    responses: { '200': { description: 'The image', contentType: 'image/*' }, '404': { description: 'Unknown, or metadata only' } },
  },
  {
    method: 'get',
    path: '/devices/:id/screenshots',
    summary: 'Screenshots, newest first',
    tags: ['telemetry'],
    query: listQuery,
    responses: { '200': { description: 'Screenshots' } },
  },
];
