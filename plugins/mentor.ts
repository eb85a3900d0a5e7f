/**
 * The mentor preset (SPEC section 4): the devices host's events to the mentor's routes, in the seed's
 * record shape, with an `enabled(type)` switch (the host passes its `FORWARD_*` toggles), the seed's retry
 * schedule, signing with `MENTOR_SIGNING_SECRET`, and batching of metrics, activities, alerts and screenshots when a backlog exists. Also the reverse
 * direction: `command.created` from the mentor to the devices host.
 */
import type { CircuitOptions } from '../lib/circuit.js';
import type { DeviceEventType, RelayEvent } from '../lib/events.js';
import { exponentialBackoff } from '../lib/retry.js';
import { defaultClassify } from '../lib/target.js';
import type { TargetPlugin } from '../lib/target.js';
import { httpTarget } from './http.js';
import type { HttpRoute } from './http.js';

/** An uploaded screenshot's image, as the host stored it. */
export interface ScreenshotImage {
  contentType: string;
  bytes: Buffer;
}

/** Options of {@link mentorTarget}. */
export interface MentorTargetOptions {
  /** `MENTOR_API_URL`. */
  url: string;
  signingSecret?: string;
  /** Whether events of a type are forwarded (checked at publish time); all are by default. */
  enabled?: (type: string) => boolean;
  /** `FORWARD_MAX_RETRIES` (3). */
  maxRetries?: number;
  /** `FORWARD_BACKOFF_BASE` in ms (1000). */
  backoffBaseMs?: number;
  concurrency?: number;
  maxBatchSize?: number;
  circuit?: Partial<CircuitOptions>;
  /**
   * The image of a `screenshot.submitted` record (its event data), read when the forward is sent: the
   * record then travels with `image_base64` (and the image's `content_type`) so the mentor can serve it.
   * Null: the record goes without one (metadata only, or the file is gone). A throw retries the delivery.
   * Unset: records go without images.
   */
  screenshotImage?: (record: Record<string, unknown>) => Promise<ScreenshotImage | null>;
}

/**
 * A process snapshot goes as the seed's array of process records; an empty snapshot (the device's list was
 * cleared) has no records to carry the device id, so it goes as `{deviceid, snapshot_at, processes: []}`.
 */
export function processSnapshotBody(e: RelayEvent): unknown {
  const d = e.data as { deviceid: string; snapshot_at: string; processes: Array<Record<string, unknown>> };
  if (d.processes.length === 0) return { deviceid: d.deviceid, snapshot_at: d.snapshot_at, processes: [] };
  return d.processes.map((p) => ({ ...p, deviceid: d.deviceid, snapshot_at: d.snapshot_at }));
}

/** The mentor's route for every device event type (a type missing here fails to compile). */
export const MENTOR_ROUTES = {
  'device.registered': { path: '/devices/register' },
  'metric.submitted': { path: '/devices/metrics', batch: true },
  'activity.submitted': { path: '/devices/activity', batch: true },
  'process.snapshot': {
    path: '/devices/processes',
    /** A snapshot as the seed's array of process records (see {@link processSnapshotBody}). */
    body: processSnapshotBody,
  },
  'alert.submitted': { path: '/devices/alerts', batch: true },
  'screenshot.submitted': { path: '/devices/screenshots', batch: true },
  'command.updated': { path: '/commands/status' },
} as const satisfies Record<DeviceEventType, HttpRoute>;

/** Probe soon after an outage begins, then back off to at most 30 x base (30 s by default). */
function circuitFor(backoffBaseMs: number, given: Partial<CircuitOptions> | undefined): Partial<CircuitOptions> {
  return {
    cooldownMs: Math.max(50, Math.min(5_000, 2 * backoffBaseMs)),
    maxCooldownMs: Math.max(500, Math.min(30_000, 30 * backoffBaseMs)),
    ...given,
  };
}

/** The devices host's events to a Raqeem mentor host (`MENTOR_ROUTES`), with the seed's retry schedule. */
export function mentorTarget(o: MentorTargetOptions): TargetPlugin {
  const backoffBaseMs = o.backoffBaseMs ?? 1000;
  const target = httpTarget({
    name: 'mentor',
    baseUrl: o.url,
    routes: MENTOR_ROUTES,
    signingSecret: o.signingSecret,
    enabled: o.enabled,
    retry: exponentialBackoff({ retries: o.maxRetries ?? 3, baseMs: backoffBaseMs }),
    concurrency: o.concurrency ?? 4,
    maxBatchSize: o.maxBatchSize ?? 100,
    circuit: circuitFor(backoffBaseMs, o.circuit),
    // The mentor's other 4xx mean the record itself is refused: retrying cannot help.
    classify: defaultClassify,
  });
  return o.screenshotImage ? withScreenshotImages(target, o.screenshotImage) : target;
}

/** Whether a screenshot record is an upload (the devices host sets `content_type` only for uploaded files). */
const isUpload = (e: RelayEvent) => e.type === 'screenshot.submitted' && Boolean((e.data as { content_type?: unknown }).content_type);

/**
 * Screenshot records travel with their image. The outbox row stays small (the bytes are read from the
 * devices host's store when the request is built, on every attempt), so the image is as durable as the
 * record: a mentor outage only delays it. An upload travels alone (never batched), so one request carries
 * at most one image: SCREENSHOT_MAX_BYTES as base64 plus the record.
 */
function withScreenshotImages(target: TargetPlugin, load: NonNullable<MentorTargetOptions['screenshotImage']>): TargetPlugin {
  const batchKey = target.batch!.key;
  return {
    ...target,
    batch: { maxSize: target.batch!.maxSize, key: (e) => (isUpload(e) ? null : batchKey(e)) },
    async prepare(events, ctx) {
      const withImages = await Promise.all(
        events.map(async (e) => {
          if (!isUpload(e)) return e;
          const image = await load(e.data);
          if (!image) return e;
          return { ...e, data: { ...e.data, content_type: image.contentType, image_base64: image.bytes.toString('base64') } };
        }),
      );
      return target.prepare(withImages, ctx);
    },
  };
}

/** Options of {@link devicesCommandTarget}. */
export interface DevicesCommandTargetOptions {
  /** `DEVICES_API_URL`. */
  url: string;
  signingSecret?: string;
  maxRetries?: number;
  backoffBaseMs?: number;
  circuit?: Partial<CircuitOptions>;
}

/** Mentor side: deliver `command.created` to the devices host's `POST /api/v1/devices/{id}/commands`. */
export function devicesCommandTarget(o: DevicesCommandTargetOptions): TargetPlugin {
  const backoffBaseMs = o.backoffBaseMs ?? 1000;
  return httpTarget({
    name: 'devices',
    baseUrl: o.url,
    routes: {
      'command.created': {
        path: (e) => `/api/v1/devices/${encodeURIComponent(String(e.deviceid))}/commands`,
        body: (e) => {
          const d = e.data as { commandid: string; command_text: string; created_at?: string };
          // deviceid is in the signed body so the devices host can refuse the command on any other device's path.
          return { commandid: d.commandid, deviceid: String(e.deviceid), command_text: d.command_text, created_at: d.created_at };
        },
      },
    },
    signingSecret: o.signingSecret,
    retry: exponentialBackoff({ retries: o.maxRetries ?? 3, baseMs: backoffBaseMs }),
    concurrency: 4,
    circuit: circuitFor(backoffBaseMs, o.circuit),
  });
}
