/**
 * The dashboards' read API. Lists are newest first with `limit` 1..1000 (default 100). Records of a device
 * the mentor has not seen register yet are still listed: forwards are only best-effort ordered.
 */
import { Router } from 'express';
import type { Request, RequestHandler } from 'express';
import { requireBearer } from '../../../lib/http/auth.js';
import { z } from 'zod';
import type { Database } from '../../../lib/db.js';
import { notFound, parseOr422 } from '../../../lib/http/problem.js';
import type { RouteDoc } from '../../../lib/http/openapi.js';
import { activitiesQuerySchema, deviceId, listQuerySchema } from '../schemas.js';
import { listCommands } from '../store/commands.js';
import { getDevice, listDevices, listProcesses } from '../store/devices.js';
import { listActivities, listRecords, RECORD_KINDS } from '../store/records.js';

const limitOf = (req: Request) => parseOr422(listQuerySchema, req.query, 'query').limit;

/** An id that cannot be a device is simply not found (it cannot have been stored). */
function deviceOf(req: Request): string {
  const r = deviceId.safeParse(req.params.id);
  if (!r.success) throw notFound(`Device ${JSON.stringify(String(req.params.id).slice(0, 140))} not found`);
  return r.data;
}

const LISTS = {
  metrics: (db: Database, id: string, limit: number) => listRecords(db, RECORD_KINDS.metrics, id, limit),
  activities: (db: Database, id: string, limit: number) => listRecords(db, RECORD_KINDS.activities, id, limit),
  alerts: (db: Database, id: string, limit: number) => listRecords(db, RECORD_KINDS.alerts, id, limit),
  screenshots: (db: Database, id: string, limit: number) => listRecords(db, RECORD_KINDS.screenshots, id, limit),
  processes: listProcesses,
  commands: listCommands,
} as const;

/** With `readToken` (MENTOR_READ_TOKEN) every read route requires it as a bearer token. */
export function readRouter(db: Database, readToken?: string): Router {
  const router = Router();
  const guard: RequestHandler = readToken ? requireBearer(readToken, 'MENTOR_READ_TOKEN') : (_req, _res, next) => next();

  router.get('/devices', guard, async (req, res) => {
    res.json(await listDevices(db, limitOf(req)));
  });

  router.get('/devices/:id', guard, async (req, res) => {
    const id = deviceOf(req);
    const device = await getDevice(db, id);
    if (!device) throw notFound(`Device ${id} not found`);
    res.json(device);
  });

  for (const [name, list] of Object.entries(LISTS)) {
    router.get(`/devices/:id/${name}`, guard, async (req, res) => {
      const limit = limitOf(req);
      res.json(await list(db, deviceOf(req), limit));
    });
  }

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
    responses: list('Devices'),
  },
  {
    method: 'get',
    path: '/devices/:id',
    summary: 'One device',
    tags: ['read'],
    params: { id: 'Device id' },
    responses: {
      '200': { description: 'The device', schema: z.record(z.string(), z.unknown()) },
      '404': { description: 'Unknown device' },
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
      responses: list(name),
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
