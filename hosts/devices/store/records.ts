/**
 * Stored rows to API objects and event data. Ingestion, the read API and reconcile all go through these, so
 * a record forwarded now and the same record re-published by reconcile carry identical data.
 */
import { num } from '../../../lib/db.js';

type Row = Record<string, unknown>;

export const iso = (ms: unknown): string => new Date(num(ms)).toISOString();
/** PostgreSQL returns BIGINT as a string; null stays null. */
const n = (v: unknown): number | null => (v === null || v === undefined ? null : num(v));
const s = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));
/** SQLite has no booleans: 0/1. */
const bool = (v: unknown): boolean => v === true || v === 1 || v === '1' || v === 't';

export const DEVICE_FIELDS = ['device_name', 'device_type', 'os', 'device_location', 'ip_address', 'mac_address', 'current_user'] as const;

export function deviceRecord(r: Row) {
  return {
    deviceid: String(r.deviceid),
    device_name: s(r.device_name),
    device_type: s(r.device_type),
    os: s(r.os),
    device_location: s(r.device_location),
    ip_address: s(r.ip_address),
    mac_address: s(r.mac_address),
    current_user: s(r.current_user),
    last_seen: iso(r.last_seen),
    is_online: bool(r.is_online),
  };
}

/**
 * Raqeem's legacy names beside ours (`id`, `name`), for responses only: its dashboard reads them. Event data
 * (what the mentor and webhooks receive) keeps the seed's shape.
 */
export const withDeviceAliases = <T extends { deviceid: string; device_name: string | null }>(d: T) => ({
  ...d,
  id: d.deviceid,
  name: d.device_name,
});

export const METRIC_FIELDS = [
  'cpu_usage',
  'cpu_temp',
  'memory_total',
  'memory_used',
  'swap_used',
  'disk_total',
  'disk_used',
  'net_bytes_in',
  'net_bytes_out',
] as const;

export function metricRecord(r: Row) {
  const out: Record<string, unknown> = { metricid: String(r.metricid), deviceid: String(r.deviceid), timestamp: iso(r.timestamp) };
  for (const f of METRIC_FIELDS) out[f] = n(r[f]);
  return out as { metricid: string; deviceid: string; timestamp: string } & Record<(typeof METRIC_FIELDS)[number], number | null>;
}

export function activityRecord(r: Row) {
  return {
    activityid: String(r.activityid),
    deviceid: String(r.deviceid),
    timestamp: iso(r.timestamp),
    activity_type: String(r.activity_type),
    description: s(r.description),
    app: s(r.app),
    duration: n(r.duration),
  };
}

export function processRecord(r: Row) {
  return { pid: num(r.pid), process_name: String(r.process_name), cpu: n(r.cpu), memory: n(r.memory), command_text: s(r.command_text) };
}

/** A process list item of a response: Raqeem's `name` beside `process_name`. */
export const withProcessAlias = <T extends { process_name: string }>(p: T) => ({ ...p, name: p.process_name });

/** `process.snapshot` event data: one device's whole list at one moment. */
export function processSnapshot(deviceid: string, snapshotAt: unknown, rows: Row[]) {
  return { deviceid, snapshot_at: iso(snapshotAt), processes: rows.map(processRecord) };
}

export function alertRecord(r: Row) {
  return {
    alertid: String(r.alertid),
    deviceid: String(r.deviceid),
    timestamp: iso(r.timestamp),
    level: String(r.level),
    alert_type: String(r.alert_type),
    message: s(r.message),
    value: n(r.value),
    threshold: n(r.threshold),
  };
}

export function screenshotRecord(r: Row) {
  return {
    screenshotid: String(r.screenshotid),
    deviceid: String(r.deviceid),
    timestamp: iso(r.timestamp),
    path: String(r.path),
    resolution: s(r.resolution),
    size: n(r.size),
    content_type: s(r.content_type),
  };
}

export function commandRecord(r: Row) {
  return {
    commandid: String(r.commandid),
    deviceid: String(r.deviceid),
    command_text: String(r.command_text),
    status: String(r.status),
    result: s(r.result),
    exit_code: n(r.exit_code),
    created_at: iso(r.created_at),
    updated_at: iso(r.updated_at),
  };
}

/**
 * `command.updated` event data (what the mentor's `POST /commands/status` takes). `command_text` and
 * `created_at` let the mentor learn a command it did not create (one made on the devices host).
 */
export function commandUpdate(r: Row) {
  const c = commandRecord(r);
  return {
    commandid: c.commandid,
    deviceid: c.deviceid,
    command_text: c.command_text,
    status: c.status,
    result: c.result,
    exit_code: c.exit_code,
    created_at: c.created_at,
    updated_at: c.updated_at,
  };
}
