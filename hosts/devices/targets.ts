/**
 * The devices outbox's targets, built from configuration in one place for the host, `worker`,
 * `reconcile` and `migrate`: the mentor (unless standalone) and the webhook subscribers.
 */
import type { ResolvedConfig } from '../shared/config.js';
import type { Database } from '../../lib/db.js';
import type { DeviceEventType } from '../../lib/events.js';
import type { Logger } from '../../lib/logger.js';
import type { TargetPlugin } from '../../lib/target.js';
import { mentorTarget } from '../../plugins/mentor.js';
import { webhooksTarget } from '../../plugins/webhooks/index.js';
import type { WebhooksPlugin, WebhooksTargetOptions } from '../../plugins/webhooks/index.js';

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
      }),
    );
  }
  const webhooks = webhooksTarget({
    db,
    encryptionKey: config.encryptionKey,
    allowPrivateNetworks: config.webhooks.allowPrivateNetworks,
    allowedHosts: config.webhooks.allowedHosts,
    disableAfterMs: config.webhooks.disableAfterMs,
    ...(overrides.schedule ? { schedule: overrides.schedule, jitter: 0 } : {}),
    ...(overrides.circuit ? { circuit: overrides.circuit } : {}),
    logger,
  });
  targets.push(webhooks);
  return { targets, webhooks };
}
