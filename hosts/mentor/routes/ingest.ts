/**
 * Forwards from the devices host (SPEC section 8). Every route answers 200 for a duplicate: the mentor
 * target retries, replays and reconciles with the same record ids, and a 4xx would kill the delivery.
 */
import { Router } from 'express';
import type { Request } from 'express';
import { z } from 'zod';
import type { Database } from '../../../lib/db.js';
import { HttpProblem, parseOr422, requireJson } from '../../../lib/http/problem.js';
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
    summary: 'Store forwarded screenshot records (one or an array)',
  },
];

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

export function ingestRouter(db: Database, signingSecret: string | undefined): Router {
  const router = Router();
  const signed = requireSignature(signingSecret);

  router.post('/devices/register', requireJson, signed, async (req, res) => {
    const reg = parseOr422(registrationSchema, req.body);
    const r = await registerDevice(db, reg);
    res.json({ status: 'ok', deviceid: r.deviceid, created: r.created, applied: r.applied });
  });

  for (const { path, kind, schema } of INGEST) {
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
