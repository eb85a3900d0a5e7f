/**
 * `POST /devices/{id}/screenshots` (and Raqeem's `POST /screenshots`, the device in a form field): a multipart
 * upload (`file`, png/jpeg/webp recognised by its magic bytes, kept under `DATA_DIR/screenshots`) or JSON
 * metadata for an image stored elsewhere. `GET /screenshots/{id}` serves uploaded bytes. The file is written
 * before the record commits and removed if the commit fails, so a crash can leave an orphan file but never a
 * record without its image.
 *
 * `POST /screenshots` names its device in the form, so it can authenticate only after multer has parsed the
 * form: the upload is held in memory (at most SCREENSHOT_MAX_BYTES) and dropped unless the device is known
 * and (DEVICE_AUTH=token) the token is that device's; without any bearer token nothing is read at all.
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
import { bearerToken, unauthorized } from '../../../lib/http/auth.js';
import type { RouteDoc } from '../../../lib/http/openapi.js';
import { screenshotRecord } from '../store/records.js';
import {
  listQuery,
  screenshotBody,
  screenshotFields,
  screenshotFormDevice,
  screenshotFormUpload,
  screenshotParams,
  screenshotUpload,
} from '../schemas.js';
import { requestIdOf } from '../../shared/app.js';
import { extensionOf, sniffImage } from '../../shared/images.js';
import { ingest } from '../store/ingest.js';
import type { DevicesContext } from '../store/ingest.js';
import { checkDeviceToken, deviceGuards } from '../auth.js';
import { listNewest, requireDevice, select } from '../store/sql.js';
import type { Row } from '../store/sql.js';
import { deviceIdOf, limitOf } from './params.js';

export { sniffImage };

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

  router.post('/screenshots', async (req, res, next) => {
    if (!req.is('multipart/form-data')) {
      throw new HttpProblem(
        415,
        `Content-Type must be multipart/form-data with a device_id (or deviceid) field and a file part (got ${JSON.stringify(req.headers['content-type'] ?? '')})`,
      );
    }
    if (config.deviceAuth === 'token' && bearerToken(req.headers.authorization) === undefined) {
      throw unauthorized('Authentication required: send Authorization: Bearer <device_token> (DEVICE_AUTH=token)');
    }
    upload(req, res, (err?: unknown) => {
      if (err) return next(err);
      receiveForm(req).then((row) => created(res, row), next);
    });
  });

  /** The device of a `POST /screenshots` form, authenticated, then the same path as the per-device upload. */
  async function receiveForm(req: Request): Promise<Row> {
    const ids = parseOr422(screenshotFormDevice, req.body ?? {});
    const deviceid = ids.deviceid ?? ids.device_id;
    if (deviceid === undefined) {
      throw new HttpProblem(422, 'The request body failed validation: device_id', [
        { path: 'device_id', message: 'the device id is required (form field device_id or deviceid)' },
      ]);
    }
    if (ids.deviceid !== undefined && ids.device_id !== undefined && ids.deviceid !== ids.device_id) {
      throw new HttpProblem(422, 'The request body failed validation: deviceid', [
        { path: 'deviceid', message: 'must equal device_id when both are sent' },
      ]);
    }
    // Before anything is written: the upload so far lives only in memory and is dropped with the request.
    await checkDeviceToken(ctx, req, deviceid);
    await requireDevice(db, deviceid);
    return receiveUpload(req, deviceid);
  }

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
    if (!parsed.success) throw notFound('Screenshot not found');
    const [row] = await select(db, 'SELECT * FROM screenshots WHERE screenshotid = :id', { id: parsed.data.screenshotid });
    if (!row) throw notFound('Screenshot not found');
    if (!row.file)
      throw notFound(
        'Screenshot image not found: this screenshot was recorded as metadata only; its image is stored elsewhere (see its path)',
      );
    const bytes = await readFile(path.join(config.dataDir, String(row.file))).catch(() => null);
    if (!bytes) throw notFound('Screenshot image not found: its file is missing from DATA_DIR');
    res.type(String(row.content_type)).setHeader('cache-control', 'private, max-age=86400, immutable');
    // Shown, never sniffed or run (nosniff and the CSP come from the base app); the name is ours (the id is a
    // validated UUID, the extension from the stored type), never the uploader's.
    const ext = extensionOf(String(row.content_type));
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
    method: 'post',
    path: '/screenshots',
    summary: "Raqeem's upload route: multipart `device_id` (or `deviceid`) and `file`; otherwise as `POST /devices/{id}/screenshots`",
    tags: ['telemetry'],
    body: screenshotFormUpload,
    bodyContentType: 'multipart/form-data',
    responses: {
      '201': { description: 'Stored', schema: screenshotCreated },
      '401': { description: "DEVICE_AUTH=token: no bearer token (nothing is read), or not the named device's token" },
      '404': { description: 'Unknown device' },
      '413': { description: 'Larger than SCREENSHOT_MAX_BYTES' },
      '415': { description: 'Not multipart, or not a PNG, JPEG or WebP image' },
      '422': { description: 'No device id, an invalid one, `device_id` and `deviceid` disagreeing, or no file' },
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
