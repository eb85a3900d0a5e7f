/**
 * Device authentication (`DEVICE_AUTH`). With `token`, registration hands each device a bearer token once
 * (only its sha256 is stored) and every device route requires that device's token: ingest, pending
 * commands, command results, and the reads of that device (which also accept `RELAY_ADMIN_TOKEN`).
 * Cross-device reads (the device list, screenshots by id) need the admin token. With `none` (the default)
 * every guard passes: today's open behaviour, for the seed's manual test and existing agents.
 *
 * Unknown devices and devices without a token answer the same 401 as a wrong token, so the API does not
 * tell an unauthenticated caller which device ids exist.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { bearerToken, requireAdminToken, tokensEqual, unauthorized } from '../../lib/http/auth.js';
import { requireSignature } from '../shared/signature.js';
import type { ResolvedConfig } from '../shared/config.js';
import { commandParams, deviceParams } from './schemas.js';
import type { DevicesContext } from './store/ingest.js';
import { select } from './store/sql.js';

/** A new device token: 32 random bytes, base64url (43 characters). */
export const newDeviceToken = (): string => randomBytes(32).toString('base64url');

/** What is stored: sha256 of the token, hex. A 256-bit random token needs no slow hash. */
export const deviceTokenHash = (token: string): string => createHash('sha256').update(token, 'utf8').digest('hex');

/** Whether `token` is the one whose hash is stored (timing-safe; false when none is stored). */
export function tokenMatches(token: string, storedHash: unknown): boolean {
  return typeof storedHash === 'string' && storedHash.length > 0 && tokensEqual(deviceTokenHash(token), storedHash);
}

/** Whether the request carries the admin token (a configured one). */
export function isAdmin(token: string | undefined, adminToken: string | undefined): boolean {
  return token !== undefined && adminToken !== undefined && tokensEqual(token, adminToken);
}

export interface DeviceGuards {
  /** Routes of one device (`:id`): that device's token. */
  device: RequestHandler;
  /** Reads of one device (`:id`): that device's token or the admin token. */
  deviceOrAdmin: RequestHandler;
  /** Cross-device reads: the admin token. */
  admin: RequestHandler;
  /** `POST /devices/commands/:commandid/result`: the token of the command's device. */
  commandDevice: RequestHandler;
}

const pass: RequestHandler = (_req, _res, next) => next();

export function deviceGuards(ctx: DevicesContext): DeviceGuards {
  if (ctx.config.deviceAuth !== 'token') return { device: pass, deviceOrAdmin: pass, admin: pass, commandDevice: pass };
  const { db, config } = ctx;

  const refuse = (req: Request, deviceid: string | null) => {
    req.log?.warn({ deviceid }, 'refused a device request without a valid device token (DEVICE_AUTH=token)');
    return unauthorized('A valid device token is required: send Authorization: Bearer <device_token> of this device', 'invalid_token');
  };

  /** The bearer token, or a 401 when there is none (before any database work). */
  const tokenOf = (req: Request): string => {
    const token = bearerToken(req.headers.authorization);
    if (token === undefined) throw unauthorized('Authentication required: send Authorization: Bearer <device_token> (DEVICE_AUTH=token)');
    return token;
  };

  const storedHash = async (deviceid: string) =>
    (await select(db, 'SELECT token_hash FROM devices WHERE deviceid = :deviceid', { deviceid }))[0]?.token_hash;

  const forDevice =
    (allowAdmin: boolean): RequestHandler =>
    async (req, _res, next) => {
      try {
        const token = tokenOf(req);
        if (allowAdmin && isAdmin(token, config.adminToken)) return next();
        const id = deviceParams.safeParse(req.params);
        // A malformed id cannot be a device: let the route answer its precise 422.
        if (!id.success) return next();
        if (!tokenMatches(token, await storedHash(id.data.id))) throw refuse(req, id.data.id);
        next();
      } catch (err) {
        next(err);
      }
    };

  const commandDevice: RequestHandler = async (req, _res, next) => {
    try {
      const token = tokenOf(req);
      const cid = commandParams.safeParse(req.params);
      if (!cid.success) return next();
      const [row] = await select(
        db,
        'SELECT c.deviceid, d.token_hash FROM commands c LEFT JOIN devices d ON d.deviceid = c.deviceid WHERE c.commandid = :commandid',
        {
          commandid: cid.data.commandid,
        },
      );
      // Unknown command: the route's 404. Command ids are random, so this tells a token holder nothing useful.
      if (!row) return next();
      if (!tokenMatches(token, row.token_hash)) throw refuse(req, String(row.deviceid));
      next();
    } catch (err) {
      next(err);
    }
  };

  return { device: forDevice(false), deviceOrAdmin: forDevice(true), admin: requireAdminToken(config.adminToken), commandDevice };
}

/** How a `POST /devices/{id}/commands` was authenticated (`res.locals.commandAuth`). */
export type CommandAuth = 'signature' | 'admin' | 'none';

/**
 * Creating a command on the devices host: the mentor's signed `command.created` (`MENTOR_SIGNING_SECRET`), or
 * a caller holding `RELAY_ADMIN_TOKEN` (`Authorization: Bearer`, Raqeem's direct create). When either is
 * configured one of the configured credentials is required; with neither the route is open, as the seed's
 * was. A bearer header is checked first (a signed forward from the mentor carries none).
 */
export function commandCreateAuth(config: Pick<ResolvedConfig, 'mentorSigningSecret' | 'adminToken'>): RequestHandler {
  const secret = config.mentorSigningSecret;
  const admin = config.adminToken?.trim() ? config.adminToken.trim() : undefined;
  if (!secret && !admin) {
    return (_req, res, next) => {
      res.locals.commandAuth = 'none' satisfies CommandAuth;
      next();
    };
  }
  const signature = requireSignature(secret);
  return (req, res, next) => {
    try {
      const token = admin ? bearerToken(req.headers.authorization) : undefined;
      if (token !== undefined) {
        if (!tokensEqual(token, admin!)) throw unauthorized('The bearer token is not valid', 'invalid_token');
        res.locals.commandAuth = 'admin' satisfies CommandAuth;
        return next();
      }
      if (secret) {
        res.locals.commandAuth = 'signature' satisfies CommandAuth;
        return signature(req, res, next);
      }
      req.log?.warn('refused a command without the admin token');
      throw unauthorized(
        'Authentication required: send Authorization: Bearer <RELAY_ADMIN_TOKEN> (or a request signed with MENTOR_SIGNING_SECRET)',
      );
    } catch (err) {
      next(err);
    }
  };
}

/**
 * `DEVICE_AUTH=token` for a route whose device id is not in the path (`POST /screenshots` reads it from the
 * form): throws the same 401 as the `device` guard unless `token` is that device's. No-op with `DEVICE_AUTH=none`.
 */
export async function checkDeviceToken(ctx: DevicesContext, req: Request, deviceid: string): Promise<void> {
  if (ctx.config.deviceAuth !== 'token') return;
  const token = bearerToken(req.headers.authorization);
  const [row] = token === undefined ? [] : await select(ctx.db, 'SELECT token_hash FROM devices WHERE deviceid = :deviceid', { deviceid });
  if (token === undefined || !tokenMatches(token, row?.token_hash)) {
    req.log?.warn({ deviceid }, 'refused a device request without a valid device token (DEVICE_AUTH=token)');
    throw token === undefined
      ? unauthorized('Authentication required: send Authorization: Bearer <device_token> (DEVICE_AUTH=token)')
      : unauthorized('A valid device token is required: send Authorization: Bearer <device_token> of this device', 'invalid_token');
  }
}
