/** `POST /devices/{id}/metrics` (one sample, or an array of them: one record and event each) and its read API. */
import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import { z } from 'zod';
import { createEvent, newEventId } from '../../../lib/events.js';
import { parseOr422, requireJson } from '../../../lib/http/problem.js';
import type { RouteDoc } from '../../../lib/http/openapi.js';
import { METRIC_FIELDS, metricRecord } from '../store/records.js';
import { batchOf, listQuery, metricsBody, metricsRequest } from '../schemas.js';
import { requestIdOf } from '../../shared/app.js';
import { ingest } from '../store/ingest.js';
import type { DevicesContext } from '../store/ingest.js';
import { deviceGuards } from '../auth.js';
import { listNewest } from '../store/sql.js';
import type { Row } from '../store/sql.js';
import { deviceIdOf, limitOf } from './params.js';

export function metricsRouter(ctx: DevicesContext): Router {
  const guard = deviceGuards(ctx);
  const router = Router();
  const batch = batchOf(metricsBody, ctx.config.ingestMaxItems);

  router.post('/devices/:id/metrics', guard.device, requireJson, async (req, res) => {
    const deviceid = deviceIdOf(req);
    const many = Array.isArray(req.body);
    // The array is parsed as a whole, so a bad element is named by its index (`[3].cpu_usage`).
    const samples = many ? parseOr422(batch, req.body) : [parseOr422(metricsBody, req.body)];
    const inserted = await ingest(ctx, deviceid, async (tx) => {
      const timestamp = Date.now();
      const rows = samples.map((body) => {
        const row: Row = { metricid: randomUUID(), deviceid, timestamp, event_id: newEventId(timestamp) };
        for (const f of METRIC_FIELDS) row[f] = body[f] ?? null;
        return row;
      });
      tx.insert('metrics', rows);
      const requestId = requestIdOf(req);
      return {
        events: rows.map((r) =>
          createEvent({ id: String(r.event_id), type: 'metric.submitted', deviceid, data: metricRecord(r), requestId }),
        ),
        result: rows.length,
      };
    });
    res.json(many ? { status: 'ok', inserted } : { status: 'ok' });
  });

  router.get('/devices/:id/metrics', guard.deviceOrAdmin, async (req, res) => {
    const rows = await listNewest(ctx.db, 'metrics', deviceIdOf(req), limitOf(req));
    res.json(rows.map(metricRecord));
  });

  return router;
}

export const metricsDocs: RouteDoc[] = [
  {
    method: 'post',
    path: '/devices/:id/metrics',
    summary:
      'Submit one metrics sample, or an array of up to INGEST_MAX_ITEMS (1000) stored together (each forwarded as `metric.submitted`)',
    tags: ['telemetry'],
    body: metricsRequest,
    responses: {
      '200': {
        description: 'Stored (`inserted` answers an array)',
        schema: z.object({ status: z.literal('ok'), inserted: z.int().optional() }),
      },
      '404': { description: 'Unknown device' },
      '422': {
        description:
          'A field failed validation (an array element is named by its index, `[3].cpu_usage`), or the array has more than INGEST_MAX_ITEMS elements; nothing is stored',
      },
    },
  },
  {
    method: 'get',
    path: '/devices/:id/metrics',
    summary: 'Metrics, newest first',
    tags: ['telemetry'],
    query: listQuery,
    responses: { '200': { description: 'Metrics' } },
  },
];
