/** `POST /devices/{id}/processes`: the device's process list is replaced by each snapshot (one event per request). */
import { Router } from 'express';
import { z } from 'zod';
import { createEvent, newEventId } from '../../../lib/events.js';
import { parseOr422, requireJson } from '../../../lib/http/problem.js';
import type { RouteDoc } from '../../../lib/http/openapi.js';
import { iso, processRecord, processSnapshot, withProcessAlias } from '../store/records.js';
import { listQuery, processesBody } from '../schemas.js';
import { requestIdOf } from '../../shared/app.js';
import { ingest } from '../store/ingest.js';
import type { DevicesContext } from '../store/ingest.js';
import { deviceGuards } from '../auth.js';
import { insertRecords, requireDevice, select } from '../store/sql.js';
import { deviceIdOf, limitOf } from './params.js';

export function processesRouter(ctx: DevicesContext): Router {
  const guard = deviceGuards(ctx);
  const { db } = ctx;
  const router = Router();

  router.post('/devices/:id/processes', guard.device, requireJson, async (req, res) => {
    const deviceid = deviceIdOf(req);
    const items = parseOr422(processesBody, req.body);
    const inserted = await ingest(
      ctx,
      deviceid,
      async ({ transaction: t }) => {
        const snapshotAt = Date.now();
        const rows = items.map((p) => ({
          deviceid,
          snapshot_at: snapshotAt,
          pid: p.pid,
          process_name: p.process_name,
          cpu: p.cpu ?? null,
          memory: p.memory ?? null,
          command_text: p.command_text ?? null,
        }));
        await db.sequelize.query('DELETE FROM processes WHERE deviceid = :deviceid', { replacements: { deviceid }, transaction: t });
        await insertRecords(db, 'processes', rows, t);
        const eventId = newEventId(snapshotAt);
        await db.sequelize.query(
          'UPDATE devices SET process_snapshot_at = :snapshotAt, process_event_id = :eventId WHERE deviceid = :deviceid',
          {
            replacements: { deviceid, snapshotAt, eventId },
            transaction: t,
          },
        );
        const data = processSnapshot(deviceid, snapshotAt, rows);
        return {
          events: [createEvent({ id: eventId, type: 'process.snapshot', deviceid, data, requestId: requestIdOf(req) })],
          result: rows.length,
        };
      },
      // Two snapshots of one device must not interleave their delete and insert. The writes are direct (a
      // replacement, not an append): in a savepoint, so a failure undoes them alone.
      { lockDevice: true, direct: true },
    );
    res.json({ inserted });
  });

  router.get('/devices/:id/processes', guard.deviceOrAdmin, async (req, res) => {
    const deviceid = deviceIdOf(req);
    const limit = limitOf(req);
    await requireDevice(db, deviceid);
    // One snapshot: listed in the order the device sent it.
    const rows = await select(db, 'SELECT * FROM processes WHERE deviceid = :deviceid ORDER BY seq LIMIT :limit', { deviceid, limit });
    res.json(rows.map((r) => withProcessAlias({ ...processRecord(r), deviceid, snapshot_at: iso(r.snapshot_at) })));
  });

  return router;
}

export const processesDocs: RouteDoc[] = [
  {
    method: 'post',
    path: '/devices/:id/processes',
    summary: "Replace the device's process list (an empty array clears it); forwarded as one `process.snapshot`",
    tags: ['telemetry'],
    body: processesBody,
    responses: { '200': { description: 'Stored', schema: z.object({ inserted: z.int() }) }, '404': { description: 'Unknown device' } },
  },
  {
    method: 'get',
    path: '/devices/:id/processes',
    summary: 'The current process list',
    tags: ['telemetry'],
    query: listQuery,
    responses: { '200': { description: 'Processes' } },
  },
];
