/**
 * The devices outbox's targets, built from configuration in one place for the host, `worker`,
 * `reconcile` and `migrate`: the mentor (unless standalone) and the webhook subscribers.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ResolvedConfig } from '../shared/config.js';
import type { Database } from '../../lib/db.js';
import type { DeviceEventType } from '../../lib/events.js';
import type { Logger } from '../../lib/logger.js';
import type { TargetPlugin } from '../../lib/target.js';
import { mentorTarget } from '../../plugins/mentor.js';
import type { ScreenshotImage } from '../../plugins/mentor.js';
import { select } from './store/sql.js';
import { webhooksTarget } from '../../plugins/webhooks/index.js';
import type { WebhooksPlugin, WebhooksTargetOptions } from '../../plugins/webhooks/index.js';
import { DEVICES_CATALOGUE } from './catalogue.js';

export interface DevicesTargets {
  targets: TargetPlugin[];
  /** The webhooks plugin; the host mounts its management routes (`webhooksManagement`) beside the core ones. */
  webhooks: WebhooksPlugin;
}

/** Webhook timings a caller may shorten (tests); production uses the plugin's defaults. */
export type WebhookOverrides = Pick<WebhooksTargetOptions, 'schedule' | 'circuit'>;

export function devicesTargets(config: ResolvedConfig, db: Database, logger?: Logger, overrides: WebhookOverrides = {}): DevicesTargets {
  const targets: TargetPlugin[] = [];
  if (config.mentorApiUrl) {
    targets.push(
      mentorTarget({
        url: config.mentorApiUrl,
        signingSecret: config.mentorSigningSecret,
        enabled: (type) => config.forward.toggles[type as DeviceEventType] ?? true,
        maxRetries: config.forward.maxRetries,
        backoffBaseMs: config.forward.backoffBaseMs,
        screenshotImage: screenshotImageLoader(config, db, logger),
      }),
    );
  }
  const webhooks = webhooksTarget({
    db,
    encryptionKey: config.encryptionKey,
    allowPrivateNetworks: config.webhooks.allowPrivateNetworks,
    allowedHosts: config.webhooks.allowedHosts,
    disableAfterMs: config.webhooks.disableAfterMs,
    catalogue: DEVICES_CATALOGUE,
    ...(overrides.schedule ? { schedule: overrides.schedule, jitter: 0 } : {}),
    ...(overrides.circuit ? { circuit: overrides.circuit } : {}),
    logger,
  });
  targets.push(webhooks);
  return { targets, webhooks };
}

/**
 * The image of an uploaded screenshot, for its forward to the mentor. The file is found through the stored
 * row's `file` (our own name under DATA_DIR), never through the record's `path`, which a JSON record sets
 * freely. A file that is gone (deleted by hand, or a worker without the hosts' DATA_DIR) is logged and the
 * record is forwarded without it; any other read error retries the delivery.
 */
export function screenshotImageLoader(
  config: ResolvedConfig,
  db: Database,
  logger?: Logger,
): (record: Record<string, unknown>) => Promise<ScreenshotImage | null> {
  return async (record) => {
    const [row] = await select(db, 'SELECT file, content_type FROM screenshots WHERE screenshotid = :id', {
      id: String(record.screenshotid),
    });
    if (!row?.file || !row.content_type) return null;
    try {
      return { contentType: String(row.content_type), bytes: await readFile(path.join(config.dataDir, String(row.file))) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      logger?.warn(
        { screenshotid: String(record.screenshotid), file: String(row.file) },
        'screenshot image missing from DATA_DIR; forwarding the record to the mentor without it',
      );
      return null;
    }
  };
}
