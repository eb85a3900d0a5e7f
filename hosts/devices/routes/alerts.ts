/** `POST /devices/{id}/alerts` (one `alert.submitted` per item) and its read API. */
import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import { createEvent, newEventId } from '../../../lib/events.js';
import { parseOr422, requireJson } from '../../../lib/http/problem.js';
import type { RouteDoc } from '../../../lib/http/openapi.js';
import { alertRecord } from '../store/records.js';
import { alertsBody, alertItem, batchOf, listQuery } from '../schemas.js';
import { requestIdOf } from '../../shared/app.js';
import { ingest } from '../store/ingest.js';
import type { DevicesContext } from '../store/ingest.js';
import { deviceGuards } from '../auth.js';
import { listNewest } from '../store/sql.js';
import { deviceIdOf, limitOf } from './params.js';

export function alertsRouter(ctx: DevicesContext): Router {
  const guard = deviceGuards(ctx);
  const router = Router();
  const batch = batchOf(alertItem, ctx.config.ingestMaxItems);

  router.post('/devices/:id/alerts', guard.device, requireJson, async (req, res) => {
    const deviceid = deviceIdOf(req);
    const items = parseOr422(batch, req.body);
    const inserted = await ingest(ctx, deviceid, async (tx) => {
      const timestamp = Date.now();
      const rows = items.map((a) => ({
        alertid: randomUUID(),
        deviceid,
        timestamp,
        event_id: newEventId(timestamp),
        level: a.level,
        alert_type: a.alert_type,
        message: a.message ?? null,
        value: a.value ?? null,
        threshold: a.threshold ?? null,
      }));
      tx.insert('alerts', rows);
      const requestId = requestIdOf(req);
      const events = rows.map((r) => createEvent({ id: r.event_id, type: 'alert.submitted', deviceid, data: alertRecord(r), requestId }));
      return { events, result: rows.length };
    });
    res.json({ inserted });
  });

  router.get('/devices/:id/alerts', guard.deviceOrAdmin, async (req, res) => {
    const rows = await listNewest(ctx.db, 'alerts', deviceIdOf(req), limitOf(req));
    res.json(rows.map(alertRecord));
  });

  return router;
}

export const alertsDocs: RouteDoc[] = [
  {
    method: 'post',
    path: '/devices/:id/alerts',
    summary: 'Submit alerts (each forwarded as `alert.submitted`)',
    tags: ['telemetry'],
    body: alertsBody,
    responses: { '200': { description: 'Stored', schema: z.object({ inserted: z.int() }) }, '404': { description: 'Unknown device' } },
  },
  {
    method: 'get',
    path: '/devices/:id/alerts',
    summary: 'Alerts, newest first',
    tags: ['telemetry'],
    query: listQuery,
    responses: { '200': { description: 'Alerts' } },
  },
];
