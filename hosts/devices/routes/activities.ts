/** `POST /devices/{id}/activities` (one `activity.submitted` per item) and its read API. */
import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import { createEvent, newEventId } from '../../../lib/events.js';
import { parseOr422, requireJson } from '../../../lib/http/problem.js';
import type { RouteDoc } from '../../../lib/http/openapi.js';
import { activityRecord } from '../store/records.js';
import { activitiesBody, activityItem, batchOf, listQuery } from '../schemas.js';
import { requestIdOf } from '../../shared/app.js';
import { ingest } from '../store/ingest.js';
import type { DevicesContext } from '../store/ingest.js';
import { deviceGuards } from '../auth.js';
import { listNewest } from '../store/sql.js';
import { deviceIdOf, limitOf } from './params.js';

export function activitiesRouter(ctx: DevicesContext): Router {
  const guard = deviceGuards(ctx);
  const router = Router();
  const batch = batchOf(activityItem, ctx.config.ingestMaxItems);

  router.post('/devices/:id/activities', guard.device, requireJson, async (req, res) => {
    const deviceid = deviceIdOf(req);
    const items = parseOr422(batch, req.body);
    const inserted = await ingest(ctx, deviceid, async (tx) => {
      const timestamp = Date.now();
      const rows = items.map((a) => ({
        activityid: randomUUID(),
        deviceid,
        timestamp,
        event_id: newEventId(timestamp),
        activity_type: a.activity_type,
        description: a.description ?? null,
        app: a.app ?? null,
        duration: a.duration ?? null,
      }));
      tx.insert('activities', rows);
      const requestId = requestIdOf(req);
      const events = rows.map((r) =>
        createEvent({ id: r.event_id, type: 'activity.submitted', deviceid, data: activityRecord(r), requestId }),
      );
      return { events, result: rows.length };
    });
    res.json({ inserted });
  });

  router.get('/devices/:id/activities', guard.deviceOrAdmin, async (req, res) => {
    const rows = await listNewest(ctx.db, 'activities', deviceIdOf(req), limitOf(req));
    res.json(rows.map(activityRecord));
  });

  return router;
}

export const activitiesDocs: RouteDoc[] = [
  {
    method: 'post',
    path: '/devices/:id/activities',
    summary: 'Submit activities (each forwarded as `activity.submitted`)',
    tags: ['telemetry'],
    body: activitiesBody,
    responses: { '200': { description: 'Stored', schema: z.object({ inserted: z.int() }) }, '404': { description: 'Unknown device' } },
  },
  {
    method: 'get',
    path: '/devices/:id/activities',
    summary: 'Activities, newest first',
    tags: ['telemetry'],
    query: listQuery,
    responses: { '200': { description: 'Activities' } },
  },
];
