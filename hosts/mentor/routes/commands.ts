/**
 * Remote commands: a dashboard creates one (`POST /devices/{id}/commands`), the relay delivers it to the
 * devices host, and the device's result comes back as a forward to `POST /commands/status`.
 */
import { Router } from 'express';
import type { Request, Response } from 'express';
import { z } from 'zod';
import type { Database } from '../../../lib/db.js';
import { notFound, parseOr422, requireJson } from '../../../lib/http/problem.js';
import type { RouteDoc } from '../../../lib/http/openapi.js';
import type { Relay } from '../../../lib/relay.js';
import { COMMAND_WHITELIST, commandStatusSchema, deviceId, newCommandForDeviceSchema, newCommandSchema } from '../schemas.js';
import { requestIdOf } from '../../shared/app.js';
import { requireSignature } from '../../shared/signature.js';
import { createCommand, updateCommandStatus } from '../store/commands.js';
import { assertCommandAllowed } from '../../shared/commands.js';

/**
 * Creating a remote command is the one mentor route that acts on devices, so when `RELAY_ADMIN_TOKEN` is
 * set on the mentor it requires that bearer token (without one it stays open, as the seed's mentor was).
 * The app checks it before reading the body (`guardsBeforeBody` in hosts/shared/app.ts).
 */
export const COMMAND_CREATE_PATHS = ['/devices/:id/commands', '/devices/commands'];

export function commandsRouter(db: Database, relay: Relay, signingSecret: string | undefined): Router {
  const router = Router();

  /** Validate, check the allow-list, store and publish; the same for both spellings of the route. */
  async function create(req: Request, res: Response, deviceid: string, command_text: string): Promise<void> {
    assertCommandAllowed(command_text);
    const command = await createCommand(db, relay, { deviceid, command_text, requestId: requestIdOf(req) });
    if (!command) throw notFound(`Device ${deviceid} not found`);
    res.status(201).json(command);
  }

  router.post('/devices/:id/commands', requireJson, async (req, res) => {
    const deviceid = parseOr422(deviceId, req.params.id, 'path');
    const { command_text } = parseOr422(newCommandSchema, req.body);
    await create(req, res, deviceid, command_text);
  });

  // Raqeem's dashboard names the device in the body.
  router.post('/devices/commands', requireJson, async (req, res) => {
    const { deviceid, command_text } = parseOr422(newCommandForDeviceSchema, req.body);
    await create(req, res, deviceid, command_text);
  });

  router.post('/commands/status', requireJson, requireSignature(signingSecret), async (req, res) => {
    const status = parseOr422(commandStatusSchema, req.body);
    const r = await updateCommandStatus(db, status);
    if (r.outcome === 'not_found') throw notFound(`Command ${status.commandid} not found`);
    if (r.outcome === 'wrong_device') throw notFound(`Command ${status.commandid} not found for device ${status.deviceid}`);
    res.json({ status: 'ok', applied: r.outcome === 'applied', command: r.command });
  });

  return router;
}

const command = z.object({
  commandid: z.string(),
  deviceid: z.string(),
  command_text: z.string(),
  status: z.enum(['pending', 'running', 'completed', 'failed']),
  result: z.string().nullable(),
  exit_code: z.number().int().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
});

export const commandRoutes: RouteDoc[] = [
  {
    method: 'post',
    path: '/devices/:id/commands',
    summary: 'Create a command; it is stored pending and delivered to the devices host as command.created',
    tags: ['commands'],
    params: { id: 'Device id' },
    body: newCommandSchema,
    responses: {
      '201': { description: 'Created', schema: command },
      '400': { description: `The first word is not one of ${COMMAND_WHITELIST.join(', ')}` },
      '404': { description: 'Unknown device' },
      '422': { description: 'A field failed validation' },
    },
  },
  {
    method: 'post',
    path: '/devices/commands',
    summary: "Create a command for the body's deviceid (Raqeem's dashboard); the same as POST /devices/{id}/commands",
    tags: ['commands'],
    body: newCommandForDeviceSchema,
    responses: {
      '201': { description: 'Created', schema: command },
      '400': { description: `The first word is not one of ${COMMAND_WHITELIST.join(', ')}` },
      '401': { description: 'RELAY_ADMIN_TOKEN is set on the mentor and the request lacks it' },
      '404': { description: 'Unknown device' },
      '422': { description: 'A field failed validation (deviceid, command_text)' },
    },
  },
  {
    method: 'post',
    path: '/commands/status',
    summary: "Apply a device's command status report (an older report than the stored one is ignored)",
    tags: ['ingest', 'commands'],
    body: commandStatusSchema,
    responses: {
      '200': {
        description: 'Applied (or stale and ignored)',
        schema: z.object({ status: z.literal('ok'), applied: z.boolean(), command }),
      },
      '401': { description: 'Missing or invalid signature (when MENTOR_SIGNING_SECRET is set)' },
      '404': { description: 'Unknown command' },
      '422': { description: 'A field failed validation' },
    },
  },
];
