/** `POST /devices/register` (upsert) and the device read API. */
import { Router } from 'express';
import { z } from 'zod';
import { createEvent } from '../../../lib/events.js';
import { parseOr422, requireJson } from '../../../lib/http/problem.js';
import type { RouteDoc } from '../../../lib/http/openapi.js';
import { DEVICE_FIELDS, deviceRecord } from '../store/records.js';
import { registerBody } from '../schemas.js';
import { requestIdOf } from '../../shared/app.js';
import type { DevicesContext } from '../store/ingest.js';
import { insertIgnore, q, requireDevice, select } from '../store/sql.js';
import { deviceIdOf } from './params.js';

const devicesQuery = z.object({ limit: z.coerce.number<unknown>().int().min(1).max(10_000).default(1000) });

export function devicesRouter(ctx: DevicesContext): Router {
  const { db, relay } = ctx;
  const router = Router();

  router.post('/devices/register', requireJson, async (req, res) => {
    const body = parseOr422(registerBody, req.body);
    const now = Date.now();
    // Omitted (or null) fields keep their stored values on re-registration.
    const given = DEVICE_FIELDS.filter((f) => body[f] !== undefined && body[f] !== null);
    const values: Record<string, unknown> = { deviceid: body.deviceid, now };
    for (const f of DEVICE_FIELDS) values[f] = body[f] ?? null;
    // Through the group commit; the upsert writes directly, so in a savepoint of its own.
    const created = await relay.transaction(
      async (tx) => {
        const t = tx.transaction;
        // ON CONFLICT DO NOTHING waits for a concurrent insert of the same id instead of failing on it.
        const inserted =
          (await insertIgnore(
            db.sequelize,
            'devices',
            'deviceid',
            ['deviceid', ...DEVICE_FIELDS, 'last_seen', 'is_online', 'created_at'],
            [[body.deviceid, ...DEVICE_FIELDS.map((f) => values[f]), now, true, now]],
            t,
          )) > 0;
        if (!inserted) {
          const set = [...given.map((f) => `${q(f)} = :${f}`), 'last_seen = :now', 'is_online = TRUE'].join(', ');
          await db.sequelize.query(`UPDATE devices SET ${set} WHERE deviceid = :deviceid`, { replacements: values, transaction: t });
        }
        const device = deviceRecord(await requireDevice(db, body.deviceid, t));
        tx.publish(createEvent({ type: 'device.registered', deviceid: device.deviceid, data: device, requestId: requestIdOf(req) }));
        return inserted;
      },
      { savepoint: true },
    );
    res.json(created ? { deviceid: body.deviceid, created: true, updated: null } : { deviceid: body.deviceid, created: null, updated: true });
  });

  router.get('/devices', async (req, res) => {
    const { limit } = parseOr422(devicesQuery, req.query, 'query');
    const rows = await select(db, 'SELECT * FROM devices ORDER BY last_seen DESC, deviceid LIMIT :limit', { limit });
    res.json(rows.map(deviceRecord));
  });

  router.get('/devices/:id', async (req, res) => {
    res.json(deviceRecord(await requireDevice(db, deviceIdOf(req))));
  });

  return router;
}

export const deviceObject = z.object({
  deviceid: z.string(),
  device_name: z.string().nullable(),
  device_type: z.string().nullable(),
  os: z.string().nullable(),
  device_location: z.string().nullable(),
  ip_address: z.string().nullable(),
  mac_address: z.string().nullable(),
  current_user: z.string().nullable(),
  last_seen: z.string(),
  is_online: z.boolean(),
});

export const devicesDocs: RouteDoc[] = [
  {
    method: 'post',
    path: '/devices/register',
    summary: 'Register a device, or update it (omitted fields keep their values)',
    tags: ['devices'],
    body: registerBody,
    responses: {
      '200': {
        description: '`created: true` for a new device, `updated: true` on re-registration',
        schema: z.object({ deviceid: z.string(), created: z.literal(true).nullable(), updated: z.literal(true).nullable() }),
      },
    },
  },
  { method: 'get', path: '/devices', summary: 'List devices, most recently seen first', tags: ['devices'], query: devicesQuery, responses: { '200': { description: 'Devices', schema: z.array(deviceObject) } } },
  { method: 'get', path: '/devices/:id', summary: 'One device', tags: ['devices'], responses: { '200': { description: 'The device', schema: deviceObject }, '404': { description: 'Unknown device' } } },
];
