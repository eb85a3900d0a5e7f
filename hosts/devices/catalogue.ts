/**
 * The devices host's event catalogue: for each event it publishes, the zod schema of its `data` exactly as
 * `store/records.ts` builds it (ingestion, the read API and reconcile all go through those functions), and
 * an example. The webhooks plugin serves it as `GET /api/v1/event-types` (JSON Schema generated from these)
 * and checks endpoint filters against it. `test/webhooks.catalogue.test.ts` validates real published events
 * against these schemas, so they cannot drift from the records.
 */
import { z } from 'zod';
import { DEVICE_EVENTS } from '../../lib/events.js';
import type { DeviceEventType } from '../../lib/events.js';
import type { EventTypeDefinition } from '../../plugins/webhooks/catalogue.js';
import { METRIC_FIELDS } from './store/records.js';

const time = z.iso.datetime().describe('ISO-8601, UTC');
const text = z.string().nullable();
const number = z.number().nullable();

export const deviceEventData = {
  'device.registered': z.object({
    deviceid: z.string(),
    device_name: text,
    device_type: text,
    os: text,
    device_location: text,
    ip_address: text,
    mac_address: text,
    current_user: text,
    last_seen: time,
    is_online: z.boolean(),
  }),
  'metric.submitted': z.object({
    metricid: z.string(),
    deviceid: z.string(),
    timestamp: time,
    ...(Object.fromEntries(METRIC_FIELDS.map((f) => [f, number])) as Record<(typeof METRIC_FIELDS)[number], typeof number>),
  }),
  'activity.submitted': z.object({
    activityid: z.string(),
    deviceid: z.string(),
    timestamp: time,
    activity_type: z.string(),
    description: text,
    app: text,
    duration: z.int().nullable(),
  }),
  'process.snapshot': z.object({
    deviceid: z.string(),
    snapshot_at: time,
    processes: z.array(z.object({ pid: z.int(), process_name: z.string(), cpu: number, memory: number, command_text: text })),
  }),
  'alert.submitted': z.object({
    alertid: z.string(),
    deviceid: z.string(),
    timestamp: time,
    level: z.enum(['info', 'warning', 'critical']),
    alert_type: z.string(),
    message: text,
    value: number,
    threshold: number,
  }),
  'screenshot.submitted': z.object({
    screenshotid: z.string(),
    deviceid: z.string(),
    timestamp: time,
    path: z.string(),
    resolution: text,
    size: z.int().nullable(),
    content_type: text,
  }),
  'command.updated': z.object({
    commandid: z.string(),
    deviceid: z.string(),
    // With created_at, lets the mentor learn a command made on the devices host (`pending` is that report).
    command_text: z.string(),
    status: z.enum(['pending', 'running', 'completed', 'failed']),
    result: text,
    exit_code: z.int().nullable(),
    created_at: time,
    updated_at: time,
  }),
} satisfies Record<DeviceEventType, z.ZodType>;

const DEVICE = 'test-device-123';

/** The examples of docs/webhooks.md (the doc-sync test keeps the page and these equal). */
const examples: Record<DeviceEventType, { timestamp: string; data: Record<string, unknown> }> = {
  'device.registered': {
    timestamp: '2025-01-15T10:29:58.120Z',
    data: {
      deviceid: DEVICE,
      device_name: 'Test Device',
      device_type: 'laptop',
      os: 'Ubuntu 24.04',
      device_location: 'Lab 2',
      ip_address: '10.20.0.15',
      mac_address: '3c:22:fb:10:aa:01',
      current_user: 'sara',
      last_seen: '2025-01-15T10:29:58.120Z',
      is_online: true,
    },
  },
  'metric.submitted': {
    timestamp: '2025-01-15T10:30:00.000Z',
    data: {
      metricid: '5b0f7d2e-8c1a-4f3e-9d6b-2a7c4e1f0b93',
      deviceid: DEVICE,
      timestamp: '2025-01-15T10:30:00.000Z',
      cpu_usage: 37.5,
      cpu_temp: 61.2,
      memory_total: 17179869184,
      memory_used: 9663676416,
      swap_used: 0,
      disk_total: 512110190592,
      disk_used: 201326592000,
      net_bytes_in: 1048576,
      net_bytes_out: null,
    },
  },
  'activity.submitted': {
    timestamp: '2025-01-15T10:31:12.500Z',
    data: {
      activityid: 'c7e0a9f4-1d3b-4b8e-a6f2-93d5e7b1c204',
      deviceid: DEVICE,
      timestamp: '2025-01-15T10:31:12.500Z',
      activity_type: 'app_usage',
      description: 'Edited quarterly report',
      app: 'LibreOffice Writer',
      duration: 1800,
    },
  },
  'process.snapshot': {
    timestamp: '2025-01-15T10:32:00.000Z',
    data: {
      deviceid: DEVICE,
      snapshot_at: '2025-01-15T10:32:00.000Z',
      processes: [
        { pid: 1, process_name: 'systemd', cpu: 0.1, memory: 12582912, command_text: '/sbin/init' },
        { pid: 4242, process_name: 'firefox', cpu: 12.4, memory: 734003200, command_text: '/usr/lib/firefox/firefox' },
      ],
    },
  },
  'alert.submitted': {
    timestamp: '2025-01-15T10:33:05.000Z',
    data: {
      alertid: '0e4b6d8a-2f1c-4a9e-b3d7-5c8f1a2e6b40',
      deviceid: DEVICE,
      timestamp: '2025-01-15T10:33:05.000Z',
      level: 'warning',
      alert_type: 'cpu_temperature',
      message: 'CPU temperature above threshold',
      value: 91.5,
      threshold: 85,
    },
  },
  'screenshot.submitted': {
    timestamp: '2025-01-15T10:34:00.000Z',
    data: {
      screenshotid: '9d2c4f6e-7a1b-4c3d-8e5f-1a2b3c4d5e6f',
      deviceid: DEVICE,
      timestamp: '2025-01-15T10:34:00.000Z',
      path: 'screenshots/test-device-123/9d2c4f6e-7a1b-4c3d-8e5f-1a2b3c4d5e6f.png',
      resolution: '1920x1080',
      size: 482113,
      content_type: 'image/png',
    },
  },
  'command.updated': {
    timestamp: '2025-01-15T10:35:30.000Z',
    data: {
      commandid: '4f8e2a6c-9b1d-4e3f-a5c7-2d9e6b1f8a03',
      deviceid: DEVICE,
      command_text: 'status',
      status: 'completed',
      result: 'uptime 3 days, 4:12',
      exit_code: 0,
      created_at: '2025-01-15T10:35:00.000Z',
      updated_at: '2025-01-15T10:35:30.000Z',
    },
  },
};

/** What `webhooksTarget({ catalogue })` takes. */
export const DEVICES_CATALOGUE: readonly EventTypeDefinition[] = DEVICE_EVENTS.map((e) => ({
  name: e.type,
  description: e.description,
  data: deviceEventData[e.type],
  example: examples[e.type].data,
  exampleTimestamp: examples[e.type].timestamp,
}));
