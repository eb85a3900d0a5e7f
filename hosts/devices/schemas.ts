/**
 * Request schemas of the devices API (SPEC section 7). Routes validate with these and the OpenAPI document
 * is generated from the same objects. `z.object` strips unknown keys, so unknown fields are ignored; optional
 * fields also accept `null` (agents send it for "unknown"), stored as null.
 */
import { z } from 'zod';
import { freeText, safeString } from '../../lib/http/strings.js';

export const DEVICE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** UUIDs are compared lower-cased; other ids are case-sensitive. */
export const normalizeId = (id: string): string => (UUID.test(id) ? id.toLowerCase() : id);

export const deviceId = safeString(128)
  .regex(DEVICE_ID_PATTERN, 'must be 1-128 letters, digits, ".", "_", ":" or "-", starting with a letter or digit')
  .transform(normalizeId);

/** Single-line fields (names, paths); NUL and other control characters are a 422 (lib/http/strings.ts). */
export const text = (max: number) => safeString(max);
/** Free text (descriptions, messages, command text and output): tab and line breaks allowed. */
export const prose = (max: number) => freeText(max);

const count = () => z.int().min(0).nullish();

/** At most this many items in one array body: one request is one bounded transaction. */
export const MAX_ITEMS = 5000;
const items = <T extends z.ZodType>(item: T) => z.array(item).max(MAX_ITEMS);

/** Default of `INGEST_MAX_ITEMS`: records in one metrics, activities or alerts request. */
export const INGEST_MAX_ITEMS = 1000;
/** An array of records, each its own record and event; routes build it with the configured limit. */
export const batchOf = <T extends z.ZodType>(item: T, max = INGEST_MAX_ITEMS) =>
  z.array(item).max(max, `must have at most ${max} items (INGEST_MAX_ITEMS)`);

export const registerBody = z.object({
  deviceid: deviceId,
  device_name: text(255).nullish(),
  device_type: text(255).nullish(),
  os: text(255).nullish(),
  device_location: text(255).nullish(),
  ip_address: text(255).nullish(),
  mac_address: text(255).nullish(),
  current_user: text(255).nullish(),
});

export const metricsBody = z.object({
  cpu_usage: z.number().min(0).max(100).nullish(),
  cpu_temp: z.number().min(-50).max(150).nullish(),
  memory_total: count(),
  memory_used: count(),
  swap_used: count(),
  disk_total: count(),
  disk_used: count(),
  net_bytes_in: count(),
  net_bytes_out: count(),
});

/** One sample, or (agents that were offline) an array of samples; the OpenAPI document's form. */
export const metricsRequest = z.union([metricsBody, batchOf(metricsBody)]);

export const processItem = z.object({
  pid: z
    .int()
    .min(0)
    .max(2 ** 31 - 1),
  process_name: text(255),
  cpu: z.number().min(0).max(100).nullish(),
  memory: count(),
  command_text: prose(4096).nullish(),
});
export const processesBody = items(processItem);

export const activityItem = z.object({
  activity_type: text(255).min(1),
  description: prose(1000).nullish(),
  app: text(255).nullish(),
  duration: z.int().min(0).max(86_400).nullish(),
});
export const activitiesBody = batchOf(activityItem);

export const alertItem = z.object({
  level: z.enum(['info', 'warning', 'critical']),
  alert_type: text(255).min(1),
  message: prose(500).nullish(),
  value: z.number().nullish(),
  threshold: z.number().nullish(),
});
export const alertsBody = batchOf(alertItem);

/** Screenshot metadata when the image lives elsewhere (the JSON form of the upload route). */
export const screenshotBody = z.object({
  path: text(1024).min(1),
  resolution: text(64).nullish(),
  size: count(),
});

/** The non-file fields of the multipart form. */
export const screenshotFields = z.object({ resolution: text(64).optional() });

/** The multipart form, for the OpenAPI document only (multer reads it). */
export const screenshotUpload = z.object({
  file: z.string().meta({ format: 'binary', description: 'png, jpeg or webp; at most SCREENSHOT_MAX_BYTES' }),
  resolution: text(64).optional(),
});

/** `POST /screenshots` (Raqeem's upload route): the device comes from a form field, by either of Raqeem's names. */
export const screenshotFormDevice = z.object({ device_id: deviceId.optional(), deviceid: deviceId.optional() });

/** That multipart form, for the OpenAPI document only. */
export const screenshotFormUpload = screenshotUpload.extend({
  device_id: deviceId.optional().meta({ description: 'The device (this or `deviceid` is required; both must agree)' }),
  deviceid: deviceId.optional().meta({ description: 'The device, by its other name' }),
});

export const commandId = safeString(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'must be 1-128 letters, digits, ".", "_", ":" or "-"')
  .transform(normalizeId);

/** `command.created` forwarded by the mentor, or (Raqeem's create, no `commandid`) a command the host names itself. */
export const commandBody = z.object({
  /** Absent: the host makes one (a UUID). */
  commandid: commandId.optional(),
  /** The device the command is for; signed with the body, so a captured command cannot be re-posted to another device. */
  deviceid: deviceId.optional(),
  command_text: prose(4096).min(1),
  created_at: text(64).nullish(),
});

export const commandResultBody = z.object({
  status: z.enum(['running', 'completed', 'failed']),
  result: prose(10_000).nullish(),
  exit_code: z.int().min(0).max(255).nullish(),
});

export const deviceParams = z.object({ id: deviceId });
export const commandParams = z.object({ commandid: commandId });
export const screenshotParams = z.object({
  screenshotid: safeString(64)
    .regex(UUID, 'must be a UUID')
    .transform((s) => s.toLowerCase()),
});

export const listQuery = z.object({
  limit: z.coerce.number<unknown>().int().min(1).max(1000).default(100),
});
