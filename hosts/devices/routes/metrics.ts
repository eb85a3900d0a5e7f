/** `POST /devices/{id}/metrics` and its read API. */
import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import { createEvent } from '../../../lib/events.js';
import { parseOr422, requireJson } from '../../../lib/http/problem.js';
import type { RouteDoc } from '../../../lib/http/openapi.js';
import { METRIC_FIELDS, metricRecord } from '../store/records.js';
import { listQuery, metricsBody } from '../schemas.js';
import { requestIdOf } from '../../shared/app.js';
import { ingest } from '../store/ingest.js';
import type { DevicesContext } from '../store/ingest.js';
import { insertRecords, listNewest } from '../store/sql.js';
import type { Row } from '../store/sql.js';
import { deviceIdOf, limitOf } from './params.js';

export function metricsRouter(ctx: DevicesContext): Router {
  const router = Router();

  router.post('/devices/:id/metrics', requireJson, async (req, res) => {
    const deviceid = deviceIdOf(req);
    const body = parseOr422(metricsBody, req.body);
    await ingest(ctx, deviceid, async (t) => {
      const row: Row = { metricid: randomUUID(), deviceid, timestamp: Date.now() };
      for (const f of METRIC_FIELDS) row[f] = body[f] ?? null;
      await insertRecords(ctx.db, 'metrics', [row], t);
      const data = metricRecord(row);
      return { events: [createEvent({ type: 'metric.submitted', deviceid, data, requestId: requestIdOf(req) })], result: data };
    });
    res.json({ status: 'ok' });
  });

  router.get('/devices/:id/metrics', async (req, res) => {
    const rows = await listNewest(ctx.db, 'metrics', deviceIdOf(req), limitOf(req));
    res.json(rows.map(metricRecord));
  });

  return router;
}

export const metricsDocs: RouteDoc[] = [
  {
    method: 'post',
    path: '/devices/:id/metrics',
    summary: 'Submit one metrics sample (forwarded as `metric.submitted`)',
    tags: ['telemetry'],
    body: metricsBody,
    responses: { '200': { description: 'Stored', schema: z.object({ status: z.literal('ok') }) }, '404': { description: 'Unknown device' } },
  },
  { method: 'get', path: '/devices/:id/metrics', summary: 'Metrics, newest first', tags: ['telemetry'], query: listQuery, responses: { '200': { description: 'Metrics' } } },
];
