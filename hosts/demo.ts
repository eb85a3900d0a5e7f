/**
 * `raqeem-relay demo` (what `npm start` runs): both hosts in one process on embedded SQLite under
 * `DATA_DIR`, wired together (devices -> mentor for telemetry, mentor -> devices for commands) with a
 * freshly generated shared signing secret, so the seed document's manual test works as written.
 *
 * Also the devices host as the CLI runs it (`startDevicesService`): the device API plus the webhooks target
 * and the management API, which `startDevicesHost` leaves to its caller.
 */
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../lib/config.js';
import type { ResolvedConfig } from '../lib/config.js';
import type { Database } from '../lib/db.js';
import { managementDocs, managementRouter } from '../lib/http/management.js';
import type { Logger } from '../lib/logger.js';
import { createLogger } from '../lib/logging.js';
import type { PinoLogger } from '../lib/logging.js';
import { generateSecret } from '../lib/signing.js';
import type { TargetPlugin } from '../lib/target.js';
import { mentorTarget } from '../plugins/mentor.js';
import { webhooksTarget } from '../plugins/webhooks.js';
import type { WebhooksPlugin } from '../plugins/webhooks.js';
import { republish } from './devices/reconcile.js';
import { startDevicesHost } from './devices/server.js';
import type { DevicesHost } from './devices/server.js';
import { startMentorHost } from './mentor/server.js';

/** The devices outbox's targets: the mentor (unless standalone) and the webhook subscribers. */
export function devicesTargets(config: ResolvedConfig, db: Database, logger?: Logger): TargetPlugin[] {
  const targets: TargetPlugin[] = [];
  if (config.mentorApiUrl) {
    targets.push(
      mentorTarget({
        url: config.mentorApiUrl,
        signingSecret: config.mentorSigningSecret,
        toggles: config.forward.toggles,
        maxRetries: config.forward.maxRetries,
        backoffBaseMs: config.forward.backoffBaseMs,
      }),
    );
  }
  targets.push(webhooksPlugin(config, db, logger));
  return targets;
}

function webhooksPlugin(config: ResolvedConfig, db: Database, logger?: Logger): WebhooksPlugin {
  return webhooksTarget({
    db,
    encryptionKey: config.encryptionKey,
    allowPrivateNetworks: config.webhooks.allowPrivateNetworks,
    allowedHosts: config.webhooks.allowedHosts,
    disableAfterMs: config.webhooks.disableAfterMs,
    logger,
  });
}

/** The full devices host: device API, webhooks, delivery log, dead letters and reconcile. */
export async function startDevicesService(config: ResolvedConfig, options: { logger?: PinoLogger; host?: string } = {}): Promise<DevicesHost> {
  const logger = options.logger ?? createLogger({ level: config.logLevel, service: 'devices' });
  let webhooks: WebhooksPlugin | undefined;
  return startDevicesHost(config, {
    logger,
    host: options.host,
    // startDevicesHost adds the mentor target itself; this adds the webhook subscribers.
    targets: (db) => [(webhooks = webhooksPlugin(config, db, logger))],
    extraRouters: (relay, db) => [
      managementRouter({
        relay,
        webhooks,
        adminToken: config.adminToken,
        republish: (o) => republish(db, relay, o),
        logger,
        bodyLimit: config.bodyLimit,
      }),
    ],
    extraDocs: managementDocs(),
  });
}

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

export async function runDemo(o: DemoOptions): Promise<{ devicesUrl: string; mentorUrl: string; adminToken: string; close(): Promise<void> }> {
  const env = { ...(o.env ?? process.env) };
  for (const name of OWNED) delete env[name];
  const devicesPort = o.devicesPort || (await freePort(o.host));
  const mentorPort = o.mentorPort || (await freePort(o.host));
  const shown = o.host === '0.0.0.0' || o.host === '::' ? 'localhost' : o.host === '127.0.0.1' ? 'localhost' : o.host;
  const loopback = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host;
  const secret = generateSecret();
  const adminToken = env.RELAY_ADMIN_TOKEN?.trim() || randomBytes(24).toString('base64url');
  const mentorConfig = loadConfig('mentor', { ...env, PORT: String(mentorPort), DEVICES_API_URL: `http://${loopback}:${devicesPort}`, MENTOR_SIGNING_SECRET: secret });
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
    devices = await startDevicesService(devicesConfig, { host: o.host });
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
