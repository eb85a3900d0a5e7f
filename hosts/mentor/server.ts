/**
 * Start the mentor host: its migrations, the relay that delivers `command.created` to the devices host (no
 * target when `DEVICES_API_URL` is unset) and the mentor app, through the shared lifecycle
 * (hosts/shared/server.ts: start order, bound URL, graceful close).
 */
import { Registry } from 'prom-client';
import type { Database } from '../../lib/db.js';
import { runMigrations } from '../../lib/migrate.js';
import { devicesCommandTarget } from '../../plugins/mentor.js';
import type { ResolvedConfig } from '../shared/config.js';
import { createLogger, secretsOf } from '../shared/logging.js';
import type { PinoLogger } from '../shared/logging.js';
import { startHost } from '../shared/server.js';
import type { ListenOptions, RunningHost } from '../shared/server.js';
import { createMentorApp } from './app.js';
import { mentorMigrations } from './migrations.js';

export type MentorHost = RunningHost;

export interface StartOptions extends ListenOptions {
  logger?: PinoLogger;
  registry?: Registry;
}

export async function migrateMentor(db: Database): Promise<string[]> {
  return runMigrations(db, mentorMigrations, 'mentor_migrations');
}

export async function startMentorHost(config: ResolvedConfig, options: StartOptions = {}): Promise<MentorHost> {
  const logger = options.logger ?? createLogger({ level: config.logLevel, service: 'mentor', secrets: secretsOf(config) });
  const registry = options.registry ?? new Registry();
  return startHost({
    ...options,
    config,
    logger,
    registry,
    migrate: migrateMentor,
    compose: (db) => ({
      targets: config.devicesApiUrl
        ? [
            devicesCommandTarget({
              url: config.devicesApiUrl,
              signingSecret: config.mentorSigningSecret,
              maxRetries: config.forward.maxRetries,
              backoffBaseMs: config.forward.backoffBaseMs,
            }),
          ]
        : [],
      app: (relay) => createMentorApp({ config, db, relay, logger, registry }),
    }),
    exposedWarning: config.mentorReadToken
      ? undefined
      : "the mentor host listens on a non-loopback address without MENTOR_READ_TOKEN: anyone who can reach it can read every device's data (set MENTOR_READ_TOKEN)",
    announce: (url) => [
      { url, devicesApiUrl: config.devicesApiUrl ?? null, signing: Boolean(config.mentorSigningSecret) },
      'mentor host listening',
    ],
  });
}
