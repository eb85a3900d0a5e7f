/**
 * `raqeem-relay demo` (what `npm start` runs): both hosts in one process on embedded SQLite under
 * `DATA_DIR`, wired together (devices -> mentor for telemetry, mentor -> devices for commands) with a
 * freshly generated shared signing secret, so the seed document's manual test works as written.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { loadConfig } from './shared/config.js';
import { generateSecret } from '../lib/signing.js';
import { startDevicesHost } from './devices/server.js';
import type { DevicesHost } from './devices/server.js';
import { startMentorHost } from './mentor/server.js';

/** A port nobody is listening on right now (the OS picks it), for wiring two hosts whose ports are 0. */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface DemoOptions {
  devicesPort: number;
  mentorPort: number;
  host: string;
  env?: NodeJS.ProcessEnv;
  /** Where the banner goes (stdout). */
  out?: NodeJS.WritableStream;
}

/** Variables the demo sets itself: a user's DATABASE_URL would put both hosts in one database. */
const OWNED = ['PORT', 'DATABASE_URL', 'MENTOR_API_URL', 'DEVICES_API_URL', 'MENTOR_SIGNING_SECRET'];

export async function runDemo(
  o: DemoOptions,
): Promise<{ devicesUrl: string; mentorUrl: string; adminToken: string; close(): Promise<void> }> {
  const env = { ...(o.env ?? process.env) };
  for (const name of OWNED) delete env[name];
  const devicesPort = o.devicesPort || (await freePort(o.host));
  const mentorPort = o.mentorPort || (await freePort(o.host));
  const shown = o.host === '0.0.0.0' || o.host === '::' ? 'localhost' : o.host === '127.0.0.1' ? 'localhost' : o.host;
  const loopback = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host;
  const secret = generateSecret();
  const adminToken = env.RELAY_ADMIN_TOKEN?.trim() || randomBytes(24).toString('base64url');
  // A browser app (a device simulator, a dashboard) on any origin works against the demo out of the box;
  // CORS_ORIGINS= (empty) turns CORS off, a list narrows it.
  env.CORS_ORIGINS ??= '*';
  const mentorConfig = loadConfig('mentor', {
    ...env,
    PORT: String(mentorPort),
    DEVICES_API_URL: `http://${loopback}:${devicesPort}`,
    MENTOR_SIGNING_SECRET: secret,
  });
  const devicesConfig = loadConfig('devices', {
    ...env,
    PORT: String(devicesPort),
    MENTOR_API_URL: `http://${loopback}:${mentorPort}`,
    MENTOR_SIGNING_SECRET: secret,
    RELAY_ADMIN_TOKEN: adminToken,
  });

  const mentor = await startMentorHost(mentorConfig, { host: o.host });
  let devices: DevicesHost;
  try {
    devices = await startDevicesHost(devicesConfig, { host: o.host });
  } catch (err) {
    await mentor.close();
    throw err;
  }
  const devicesUrl = `http://${shown}:${devices.port}`;
  const mentorUrl = `http://${shown}:${mentor.port}`;
  const out = o.out ?? process.stdout;
  out.write(
    [
      '',
      'raqeem-relay demo: both hosts on SQLite, forwarding signed with a generated MENTOR_SIGNING_SECRET',
      `  devices host  ${devicesUrl}  (device API under /api/v1; ${devicesConfig.databaseUrl})`,
      `  mentor host   ${mentorUrl}  (${mentorConfig.databaseUrl})`,
      `  admin token   ${adminToken}`,
      '                (Authorization: Bearer <token> for /api/v1/webhooks, /api/v1/deliveries, /api/v1/reconcile)',
      `  console       ${devicesUrl}/console/  (sign in with the admin token)`,
      '',
      'Try:',
      `  curl -X POST ${devicesUrl}/api/v1/devices/register -H "Content-Type: application/json" -d '{"deviceid":"test-device-123","device_name":"Test Device"}'`,
      `  curl ${devicesUrl}/api/v1/devices/test-device-123`,
      `  curl ${mentorUrl}/devices/test-device-123`,
      `  curl -H "Authorization: Bearer ${adminToken}" ${devicesUrl}/api/v1/deliveries`,
      '',
      'Ctrl-C stops both.',
      '',
    ].join('\n'),
  );

  let closing: Promise<void> | null = null;
  return {
    devicesUrl,
    mentorUrl,
    adminToken,
    close: () =>
      (closing ??= (async () => {
        // Devices first: its dispatcher stops sending before the mentor stops listening.
        await devices.close();
        await mentor.close();
      })()),
  };
}
