/**
 * Lists across devices (Raqeem's dashboard reads them): `GET /devices/processes`, `/devices/activities` and
 * `/devices/alerts`, newest first. Mounted before the device routes, or `/devices/:id` would take
 * `processes` for a device id. Cross-device reads: the admin token when `DEVICE_AUTH=token`.
 */
import { Router } from 'express';
import { z } from 'zod';
import { parseOr422 } from '../../../lib/http/problem.js';
import type { RouteDoc } from '../../../lib/http/openapi.js';
import { activityRecord, alertRecord, iso, processRecord, withProcessAlias } from '../store/records.js';
import { deviceId, listQuery } from '../schemas.js';
import type { DevicesContext } from '../store/ingest.js';
import { deviceGuards } from '../auth.js';
import { select } from '../store/sql.js';

/** The per-device lists' `limit`, plus `deviceid` to narrow to one device (an unknown one lists nothing). */
export const crossDeviceQuery = listQuery.extend({ deviceid: deviceId.optional() });

export function listsRouter(ctx: DevicesContext): Router {
  const guard = deviceGuards(ctx);
  const { db } = ctx;
  const router = Router();

  const newest = async (table: string, order: string, query: unknown) => {
    const { limit, deviceid } = parseOr422(crossDeviceQuery, query, 'query');
    const where = deviceid === undefined ? '' : ' WHERE deviceid = :deviceid';
    return select(db, `SELECT * FROM ${table}${where} ORDER BY ${order} LIMIT :limit`, { limit, deviceid: deviceid ?? null });
  };

  router.get('/devices/processes', guard.admin, async (req, res) => {
    // The newest snapshots first; within one snapshot, the order its device sent.
    const rows = await newest('processes', 'snapshot_at DESC, deviceid, seq', req.query);
    res.json(rows.map((r) => withProcessAlias({ ...processRecord(r), deviceid: String(r.deviceid), snapshot_at: iso(r.snapshot_at) })));
  });

  router.get('/devices/activities', guard.admin, async (req, res) => {
    res.json((await newest('activities', 'seq DESC', req.query)).map(activityRecord));
  });

  router.get('/devices/alerts', guard.admin, async (req, res) => {
    res.json((await newest('alerts', 'seq DESC', req.query)).map(alertRecord));
  });

  return router;
}

const processItem = z.object({
  pid: z.int(),
  process_name: z.string(),
  name: z.string().meta({ description: "Raqeem's legacy name of `process_name` (read-only alias)" }),
  cpu: z.number().nullable(),
  memory: z.int().nullable(),
  command_text: z.string().nullable(),
  deviceid: z.string(),
  snapshot_at: z.string(),
});

export const listsDocs: RouteDoc[] = [
  {
    method: 'get',
    path: '/devices/processes',
    summary: "Every device's current process list, newest snapshot first (DEVICE_AUTH=token: admin token)",
    tags: ['telemetry'],
    query: crossDeviceQuery,
    responses: { '200': { description: 'Processes', schema: z.array(processItem) } },
  },
  {
    method: 'get',
    path: '/devices/activities',
    summary: 'Activities of every device, newest first (DEVICE_AUTH=token: admin token)',
    tags: ['telemetry'],
    query: crossDeviceQuery,
    responses: { '200': { description: 'Activities' } },
  },
  {
    method: 'get',
    path: '/devices/alerts',
    summary: 'Alerts of every device, newest first (DEVICE_AUTH=token: admin token)',
    tags: ['telemetry'],
    query: crossDeviceQuery,
    responses: { '200': { description: 'Alerts' } },
  },
];
