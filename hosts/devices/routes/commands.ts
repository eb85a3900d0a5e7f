/**
 * Remote commands. The mentor delivers `command.created` to `POST /devices/{id}/commands` (signed when
 * `MENTOR_SIGNING_SECRET` is set, idempotent by `commandid`); a caller holding `RELAY_ADMIN_TOKEN` may also
 * create one there without a `commandid` (Raqeem's devices backend allowed it). Either way the command must be
 * on the allow-list (hosts/shared/commands.ts). The agent polls `.../commands/pending` and reports
 * `POST /devices/commands/{commandid}/result` (or Raqeem's `POST /commands/{commandid}/result`), which is
 * forwarded as `command.updated`.
 */
import { randomUUID } from 'node:crypto';
import { Router } from 'express';
import type { Request, RequestHandler } from 'express';
import { z } from 'zod';
import { createEvent, newEventId } from '../../../lib/events.js';
import { HttpProblem, notFound, parseOr422, requireJson } from '../../../lib/http/problem.js';
import type { RouteDoc } from '../../../lib/http/openapi.js';
import { commandRecord, commandUpdate } from '../store/records.js';
import { commandBody, commandParams, commandResultBody, listQuery } from '../schemas.js';
import { requestIdOf } from '../../shared/app.js';
import { assertCommandAllowed, COMMAND_WHITELIST } from '../../shared/commands.js';
import type { DevicesContext } from '../store/ingest.js';
import { commandCreateAuth, deviceGuards } from '../auth.js';
import type { CommandAuth } from '../auth.js';
import { insertIgnore, listNewest, requireDevice, select } from '../store/sql.js';
import { deviceIdOf, limitOf } from './params.js';

const dateOr = (value: string | null | undefined, fallback: number) => {
  const ms = value ? Date.parse(value) : NaN;
  return Number.isFinite(ms) ? ms : fallback;
};

/**
 * The command must name the device of its path. With signing on, a missing or different `deviceid` is a 401:
 * the signature is valid but does not vouch for a command to this device (a captured command re-posted to
 * another device's path), so the request is not authenticated for what it asks; the mentor target treats the
 * 4xx as permanent either way. Without signing nothing is authenticated: a contradicting `deviceid` is a plain
 * validation error (422) and an absent one is accepted, as a seed-style mentor sends none.
 */
function checkCommandDevice(req: Request, deviceid: string, named: string | undefined, signed: boolean): void {
  if (named === deviceid || (named === undefined && !signed)) return;
  req.log?.warn({ deviceid, bodyDeviceid: named ?? null }, 'refused a command whose body does not name the device of its path');
  if (!signed) {
    throw new HttpProblem(422, 'The request body failed validation: deviceid', [
      { path: 'deviceid', message: `must match the device in the path (${deviceid})` },
    ]);
  }
  const detail =
    named === undefined
      ? 'the signed body must name its device (deviceid)'
      : `the signed body names another device than the path (${deviceid})`;
  throw new HttpProblem(401, `Command refused: ${detail}`, undefined, { 'www-authenticate': 'Webhook' });
}

export function commandsRouter(ctx: DevicesContext): Router {
  const guard = deviceGuards(ctx);
  const { db, relay } = ctx;
  const router = Router();

  router.post('/devices/:id/commands', commandCreateAuth(ctx.config), requireJson, async (req, res) => {
    const deviceid = deviceIdOf(req);
    const body = parseOr422(commandBody, req.body);
    checkCommandDevice(req, deviceid, body.deviceid, (res.locals.commandAuth as CommandAuth) === 'signature');
    // Also for the mentor's forwards: a device never receives a command outside the list, whoever sent it.
    assertCommandAllowed(body.command_text);
    const commandid = body.commandid ?? randomUUID();
    const now = Date.now();
    // Through the group commit; the insert writes directly, so in a savepoint of its own.
    const { created, row } = await relay.transaction(
      async (tx) => {
        const t = tx.transaction;
        await requireDevice(db, deviceid, t);
        // A redelivery (same commandid) is answered 200 and changes nothing.
        const inserted = await insertIgnore(
          db.sequelize,
          'commands',
          'commandid',
          ['commandid', 'deviceid', 'command_text', 'status', 'created_at', 'updated_at'],
          [[commandid, deviceid, body.command_text, 'pending', dateOr(body.created_at, now), now]],
          t,
        );
        const [existing] = await select(db, 'SELECT * FROM commands WHERE commandid = :commandid', { commandid }, t);
        if (existing && existing.deviceid !== deviceid) {
          throw new HttpProblem(409, `Command ${JSON.stringify(commandid)} already exists for another device`);
        }
        // A command made here (no commandid given) is unknown to the mentor: tell it, so the mentor lists it and
        // accepts its result. A command that came with its id came from the mentor, which has it already.
        if (inserted > 0 && body.commandid === undefined) {
          const data = commandUpdate(existing!);
          tx.publish(createEvent({ type: 'command.updated', deviceid, data, requestId: requestIdOf(req) }));
        }
        return { created: inserted > 0, row: existing! };
      },
      { savepoint: true },
    );
    // The command as stored (Raqeem's answer); a redelivery answers the stored one with `created: false`.
    res.json({ ...commandRecord(row), created });
  });

  router.get('/devices/:id/commands/pending', guard.deviceOrAdmin, async (req, res) => {
    const deviceid = deviceIdOf(req);
    const limit = limitOf(req);
    await requireDevice(db, deviceid);
    const rows = await select(db, "SELECT * FROM commands WHERE deviceid = :deviceid AND status = 'pending' ORDER BY seq LIMIT :limit", {
      deviceid,
      limit,
    });
    res.json(rows.map(commandRecord));
  });

  router.get('/devices/:id/commands', guard.deviceOrAdmin, async (req, res) => {
    const rows = await listNewest(db, 'commands', deviceIdOf(req), limitOf(req));
    res.json(rows.map(commandRecord));
  });

  const submitResult: RequestHandler = async (req, res) => {
    const { commandid } = parseOr422(commandParams, req.params, 'path');
    const body = parseOr422(commandResultBody, req.body);
    // Through the group commit; the UPDATE writes directly, so in a savepoint of its own.
    await relay.transaction(
      async (tx) => {
        const t = tx.transaction;
        const lock = db.dialect === 'postgres' ? ' FOR UPDATE' : '';
        const [row] = await select(db, `SELECT * FROM commands WHERE commandid = :commandid${lock}`, { commandid }, t);
        if (!row) throw notFound(`Command ${JSON.stringify(commandid)} not found`);
        const now = Date.now();
        const eventId = newEventId(now);
        const set = ['status = :status', 'updated_at = :now', 'event_id = :eventId'];
        if (body.result !== undefined) set.push('result = :result');
        if (body.exit_code !== undefined) set.push('exit_code = :exitCode');
        await db.sequelize.query(`UPDATE commands SET ${set.join(', ')} WHERE commandid = :commandid`, {
          replacements: { commandid, status: body.status, now, eventId, result: body.result ?? null, exitCode: body.exit_code ?? null },
          transaction: t,
        });
        const [updated] = await select(db, 'SELECT * FROM commands WHERE commandid = :commandid', { commandid }, t);
        const data = commandUpdate(updated!);
        tx.publish(createEvent({ id: eventId, type: 'command.updated', deviceid: data.deviceid, data, requestId: requestIdOf(req) }));
      },
      { savepoint: true },
    );
    res.json({ status: 'ok', commandid });
  };
  router.post('/devices/commands/:commandid/result', guard.commandDevice, requireJson, submitResult);
  // Raqeem's device simulator posts results here.
  router.post('/commands/:commandid/result', guard.commandDevice, requireJson, submitResult);

  return router;
}

const commandObject = z.object({
  commandid: z.string(),
  deviceid: z.string(),
  command_text: z.string(),
  status: z.string(),
  result: z.string().nullable(),
  exit_code: z.int().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

export const commandsDocs: RouteDoc[] = [
  {
    method: 'post',
    path: '/devices/:id/commands',
    summary:
      "Queue a command for the device: the mentor's `command.created` (signed when MENTOR_SIGNING_SECRET is set), or a direct create " +
      '(`Authorization: Bearer <RELAY_ADMIN_TOKEN>` when set; no `commandid`: the host makes one). The first word must be on the allow-list',
    tags: ['commands'],
    body: commandBody,
    responses: {
      '200': {
        description: 'Queued: the command as stored (`status: "pending"`), `created: false` for a redelivery',
        schema: commandObject.extend({ created: z.boolean() }),
      },
      '400': { description: `The first word is not one of ${COMMAND_WHITELIST.join(', ')} (detail says "not allowed")` },
      '401': {
        description:
          'MENTOR_SIGNING_SECRET or RELAY_ADMIN_TOKEN is set and the request has neither a valid signature nor the admin token, a ' +
          'replayed webhook-id carrying another body, or (signed) a body whose `deviceid` is missing or names another device',
      },
      '422': { description: 'A field failed validation, or (unsigned) `deviceid` names another device than the path' },
      '404': { description: 'Unknown device' },
    },
  },
  {
    method: 'get',
    path: '/devices/:id/commands/pending',
    summary: 'Pending commands, oldest first',
    tags: ['commands'],
    query: listQuery,
    responses: { '200': { description: 'Commands', schema: z.array(commandObject) } },
  },
  {
    method: 'get',
    path: '/devices/:id/commands',
    summary: 'Commands, newest first',
    tags: ['commands'],
    query: listQuery,
    responses: { '200': { description: 'Commands', schema: z.array(commandObject) } },
  },
  {
    method: 'post',
    path: '/devices/commands/:commandid/result',
    summary: 'Report a command result (forwarded as `command.updated`)',
    tags: ['commands'],
    body: commandResultBody,
    responses: {
      '200': { description: 'Updated', schema: z.object({ status: z.literal('ok'), commandid: z.string() }) },
      '404': { description: 'Unknown command' },
    },
  },
  {
    method: 'post',
    path: '/commands/:commandid/result',
    summary: "Raqeem's path for a command result: the same as `POST /devices/commands/{commandid}/result`",
    tags: ['commands'],
    body: commandResultBody,
    responses: {
      '200': { description: 'Updated', schema: z.object({ status: z.literal('ok'), commandid: z.string() }) },
      '404': { description: 'Unknown command' },
    },
  },
];
