/**
 * What the mentor accepts: the seed's record shapes as the devices host forwards them (SPEC section 4 and
 * the event data shapes). Ranges mirror the devices host's validation, so a record the devices host stored
 * is never refused here (a refusal would be a permanent failure, a dead delivery). Unknown fields are
 * stripped. Times are parsed to epoch milliseconds.
 */
import { z } from 'zod';
import { freeText, safeString } from '../../lib/http/strings.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const deviceId = safeString(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'must be 1-128 characters: letters, digits and . _ : - (not first)')
  .transform((v) => (UUID.test(v) ? v.toLowerCase() : v));

/** Single-line fields; NUL and other control characters are a 422 (lib/http/strings.ts). */
const text = (max: number) => safeString(max);
/** Free text (descriptions, messages, command text and output): tab and line breaks allowed. */
const prose = (max: number) => freeText(max).nullish();

/** An origin record id: whatever the devices host generated (a UUID), bounded and non-empty. */
const recordId = text(128).min(1);

/** An ISO-8601 time as epoch milliseconds. */
export const isoTime = safeString(64)
  .refine((v) => Number.isFinite(Date.parse(v)), 'must be an ISO-8601 date-time')
  .transform((v) => Date.parse(v));

const str = (max: number) => text(max).nullish();
const count = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullish();
const finite = z.number().finite().nullish();

export const registrationSchema = z.object({
  deviceid: deviceId,
  device_name: str(255),
  device_type: str(255),
  os: str(255),
  device_location: str(255),
  ip_address: str(255),
  mac_address: str(255),
  current_user: str(255),
  last_seen: isoTime.optional(),
  is_online: z.boolean().optional(),
});
export type Registration = z.output<typeof registrationSchema>;

export const metricSchema = z.object({
  metricid: recordId,
  deviceid: deviceId,
  timestamp: isoTime.optional(),
  cpu_usage: z.number().min(0).max(100).nullish(),
  cpu_temp: z.number().min(-50).max(150).nullish(),
  memory_total: count,
  memory_used: count,
  swap_used: count,
  disk_total: count,
  disk_used: count,
  net_bytes_in: count,
  net_bytes_out: count,
});

export const activitySchema = z.object({
  activityid: recordId,
  deviceid: deviceId,
  timestamp: isoTime.optional(),
  activity_type: str(255),
  description: prose(1000),
  app: str(255),
  duration: z.number().min(0).max(86_400).nullish(),
});

export const alertSchema = z.object({
  alertid: recordId,
  deviceid: deviceId,
  timestamp: isoTime.optional(),
  level: z.enum(['info', 'warning', 'critical']).nullish(),
  alert_type: str(255),
  message: prose(500),
  value: finite,
  threshold: finite,
});

/**
 * Standard base64 (what Buffer#toString('base64') writes). Checked with one flat character class: a grouped
 * pattern such as `(?:[A-Za-z0-9+/]{4})*` backtracks per group and can exhaust the regexp stack on a
 * 13 MiB string.
 */
const base64 = z
  .string()
  .refine((v) => v.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(v), 'must be standard base64 (A-Z a-z 0-9 + /, = padding)');

export const screenshotSchema = z.object({
  screenshotid: recordId,
  deviceid: deviceId,
  timestamp: isoTime.optional(),
  path: str(1024),
  resolution: str(64),
  size: count,
  content_type: str(128),
  /** The image itself (PNG, JPEG or WebP, at most SCREENSHOT_MAX_BYTES), forwarded with the record. */
  image_base64: base64.nullish(),
});

export const processSchema = z.object({
  pid: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1),
  process_name: text(255).min(1),
  cpu: z.number().min(0).max(100).nullish(),
  memory: count,
  command_text: prose(4096),
});
export type ProcessRecord = z.output<typeof processSchema>;

/** The seed's array form: each process carries its device and snapshot time. */
export const processArraySchema = z
  .array(processSchema.extend({ deviceid: deviceId, snapshot_at: isoTime }))
  .min(1, 'a snapshot array needs at least one process; send {deviceid, snapshot_at, processes: []} to clear the list')
  .superRefine((rows, ctx) => {
    const first = rows[0]!;
    rows.forEach((r, i) => {
      if (r.deviceid !== first.deviceid)
        ctx.addIssue({ code: 'custom', path: [i, 'deviceid'], message: 'every process of one snapshot must have the same deviceid' });
      if (r.snapshot_at !== first.snapshot_at)
        ctx.addIssue({ code: 'custom', path: [i, 'snapshot_at'], message: 'every process of one snapshot must have the same snapshot_at' });
    });
  });

/** The envelope form, the only way to send an empty snapshot. */
export const processEnvelopeSchema = z.object({
  deviceid: deviceId,
  snapshot_at: isoTime,
  processes: z.array(processSchema),
});

export interface ProcessSnapshot {
  deviceid: string;
  snapshotAt: number;
  processes: ProcessRecord[];
}

export const commandStatusSchema = z.object({
  commandid: recordId,
  deviceid: deviceId.optional(),
  /** With `deviceid`, lets the mentor store a command made on the devices host (it has no row for it yet). */
  command_text: freeText(4096).optional(),
  created_at: isoTime.optional(),
  status: z.enum(['pending', 'running', 'completed', 'failed']),
  result: prose(10_000),
  exit_code: z.number().int().min(0).max(255).nullish(),
  updated_at: isoTime.optional(),
});
export type CommandStatus = z.output<typeof commandStatusSchema>;

/** The allow-list lives in hosts/shared/commands.ts (the devices host enforces it too). */
export { COMMAND_WHITELIST } from '../shared/commands.js';

export const newCommandSchema = z.object({
  command_text: freeText(1000).trim().min(1, 'must not be empty'),
});

/** `POST /devices/commands` (Raqeem's dashboard): the device in the body. */
export const newCommandForDeviceSchema = newCommandSchema.extend({ deviceid: deviceId });

export const listQuerySchema = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const activitiesQuerySchema = listQuerySchema.extend({
  deviceid: deviceId.optional(),
});
