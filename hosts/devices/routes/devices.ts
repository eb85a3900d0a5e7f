/** `POST /devices/register` (upsert) and the device read API. */
import { Router } from 'express';
import { z } from 'zod';
import { createEvent, newEventId } from '../../../lib/events.js';
import { parseOr422, requireJson } from '../../../lib/http/problem.js';
import type { RouteDoc } from '../../../lib/http/openapi.js';
import { DEVICE_FIELDS, deviceRecord, withDeviceAliases } from '../store/records.js';
import { registerBody } from '../schemas.js';
import { requestIdOf } from '../../shared/app.js';
import type { DevicesContext } from '../store/ingest.js';
import { insertIgnore, q, requireDevice, select } from '../store/sql.js';
import { deviceIdOf } from './params.js';
import { bearerToken, unauthorized } from '../../../lib/http/auth.js';
import { deviceGuards, deviceTokenHash, isAdmin, newDeviceToken, tokenMatches } from '../auth.js';

const devicesQuery = z.object({ limit: z.coerce.number<unknown>().int().min(1).max(10_000).default(1000) });

export function devicesRouter(ctx: DevicesContext): Router {
  const { db, relay } = ctx;
  const router = Router();

  const guard = deviceGuards(ctx);
  const tokens = ctx.config.deviceAuth === 'token';

  router.post('/devices/register', requireJson, async (req, res) => {
    const body = parseOr422(registerBody, req.body);
    // DEVICE_AUTH=token: a new device gets a token; an existing one must present its current token (or the
    // admin token, which also (re)issues one for a device registered while auth was off) and gets a new one.
    const presented = tokens ? bearerToken(req.headers.authorization) : undefined;
    const admin = isAdmin(presented, ctx.config.adminToken);
    const deviceToken = tokens ? newDeviceToken() : undefined;
    const now = Date.now();
    // Omitted (or null) fields keep their stored values on re-registration.
    const given = DEVICE_FIELDS.filter((f) => body[f] !== undefined && body[f] !== null);
    const eventId = newEventId(now);
    const values: Record<string, unknown> = {
      deviceid: body.deviceid,
      now,
      eventId,
      tokenHash: deviceToken ? deviceTokenHash(deviceToken) : null,
    };
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
            ['deviceid', ...DEVICE_FIELDS, 'last_seen', 'is_online', 'created_at', 'token_hash', 'event_id'],
            [[body.deviceid, ...DEVICE_FIELDS.map((f) => values[f]), now, true, now, values.tokenHash, eventId]],
            t,
          )) > 0;
        if (!inserted) {
          const set = [...given.map((f) => `${q(f)} = :${f}`), 'last_seen = :now', 'is_online = TRUE', 'event_id = :eventId'];
          if (tokens) {
            // Locked, so two re-registrations with the same token cannot both rotate it.
            const stored = await requireDevice(db, body.deviceid, t, { forUpdate: true });
            if (!admin && (presented === undefined || !tokenMatches(presented, stored.token_hash))) {
              req.log?.warn({ deviceid: body.deviceid }, 'refused re-registration without the device token (DEVICE_AUTH=token)');
              throw unauthorized(
                `Device ${JSON.stringify(body.deviceid)} is already registered: re-registration requires its current token (Authorization: Bearer <device_token>)`,
                presented === undefined ? undefined : 'invalid_token',
              );
            }
            set.push('token_hash = :tokenHash');
          }
          await db.sequelize.query(`UPDATE devices SET ${set.join(', ')} WHERE deviceid = :deviceid`, {
            replacements: values,
            transaction: t,
          });
        }
        const device = deviceRecord(await requireDevice(db, body.deviceid, t));
        tx.publish(
          createEvent({ id: eventId, type: 'device.registered', deviceid: device.deviceid, data: device, requestId: requestIdOf(req) }),
        );
        return inserted;
      },
      { savepoint: true },
    );
    const answer = created
      ? { deviceid: body.deviceid, created: true, updated: null }
      : { deviceid: body.deviceid, created: null, updated: true };
    res.json(deviceToken ? { ...answer, device_token: deviceToken } : answer);
  });

  router.get('/devices', guard.admin, async (req, res) => {
    const { limit } = parseOr422(devicesQuery, req.query, 'query');
    const rows = await select(db, 'SELECT * FROM devices ORDER BY last_seen DESC, deviceid LIMIT :limit', { limit });
    res.json(rows.map((r) => withDeviceAliases(deviceRecord(r))));
  });

  router.get('/devices/:id', guard.deviceOrAdmin, async (req, res) => {
    res.json(withDeviceAliases(deviceRecord(await requireDevice(db, deviceIdOf(req)))));
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
  id: z.string().meta({ description: "Raqeem's legacy name of `deviceid` (read-only alias)" }),
  name: z.string().nullable().meta({ description: "Raqeem's legacy name of `device_name` (read-only alias)" }),
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
        description:
          '`created: true` for a new device, `updated: true` on re-registration. With DEVICE_AUTH=token, `device_token` is the ' +
          "device's bearer token, shown only here; each re-registration (which must present the current one) rotates it",
        schema: z.object({
          deviceid: z.string(),
          created: z.literal(true).nullable(),
          updated: z.literal(true).nullable(),
          device_token: z.string().optional(),
        }),
      },
      '401': { description: 'DEVICE_AUTH=token: the device exists and the request lacks its current token (or the admin token)' },
    },
  },
  {
    method: 'get',
    path: '/devices',
    summary: 'List devices, most recently seen first (DEVICE_AUTH=token: admin token)',
    tags: ['devices'],
    query: devicesQuery,
    responses: { '200': { description: 'Devices', schema: z.array(deviceObject) } },
  },
  {
    method: 'get',
    path: '/devices/:id',
    summary: 'One device',
    tags: ['devices'],
    responses: { '200': { description: 'The device', schema: deviceObject }, '404': { description: 'Unknown device' } },
  },
];
