/**
 * Fixtures for webhook and management tests: a relay with the webhooks plugin (plus any other targets) on
 * a fresh database, the management router in a small Express app on a loopback port, an API client, and a
 * logger whose every line is captured (to prove secrets never reach it).
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import pino from 'pino';
import { managementRouter } from '../../lib/http/management.js';
import type { ManagementRouterOptions } from '../../lib/http/management.js';
import { problemHandler, routeNotFound } from '../../lib/http/problem.js';
import type { Logger } from '../../lib/logger.js';
import type { Relay, RelayOptions } from '../../lib/relay.js';
import type { TargetPlugin } from '../../lib/target.js';
import { webhooksManagement, webhooksTarget } from '../../plugins/webhooks/index.js';
import type { WebhooksPlugin, WebhooksTargetOptions } from '../../plugins/webhooks/index.js';
import type { TestDialect } from './db.js';
import { relayFixture } from './relay.js';
import type { RelayFixture } from './relay.js';

export const ADMIN_TOKEN = 'test-admin-token-3b1f0c9e';

export interface ApiResponse {
  status: number;
  headers: Headers;
  text: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

export interface WebhookFixture {
  fx: RelayFixture;
  relay: Relay;
  webhooks: WebhooksPlugin;
  url: string;
  /** Every log line written by the relay, the plugin and the router. */
  logs: string[];
  api(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
  cleanup(): Promise<void>;
}

export interface WebhookFixtureOptions {
  plugin?: Partial<Omit<WebhooksTargetOptions, 'db'>>;
  targets?: TargetPlugin[];
  dispatcher?: RelayOptions['dispatcher'];
  router?: Partial<Omit<ManagementRouterOptions, 'relay' | 'extensions' | 'logger'>>;
  /** Do not start the dispatcher. */
  paused?: boolean;
  /** More relay options (for example `retentionDays`). */
  relay?: Partial<Omit<RelayOptions, 'db' | 'targets' | 'logger' | 'dispatcher'>>;
}

/** Fast retries and circuits, private networks allowed (receivers are on 127.0.0.1). */
export const FAST: Partial<WebhooksTargetOptions> = {
  allowPrivateNetworks: true,
  schedule: [50, 50, 50, 50],
  jitter: 0,
  circuit: { cooldownMs: 50, maxCooldownMs: 200 },
};

export function captureLogger(): { logger: Logger; logs: string[] } {
  const logs: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) }) as unknown as Logger;
  return { logger, logs };
}

export async function webhookFixture(dialect: TestDialect, o: WebhookFixtureOptions = {}): Promise<WebhookFixture> {
  const fx = await relayFixture(dialect);
  const { logger, logs } = captureLogger();
  const webhooks = webhooksTarget({ db: fx.tdb.db, logger, ...FAST, ...o.plugin });
  const relay = await fx.make({
    ...o.relay,
    targets: [webhooks, ...(o.targets ?? [])],
    logger,
    dispatcher: { pollIntervalMs: 50, ...o.dispatcher },
  });
  if (!o.paused) await relay.start();
  const app = express();
  app.use(express.json());
  const extensions = [webhooksManagement({ webhooks, relay, logger })];
  app.use('/api/v1', managementRouter({ relay, adminToken: ADMIN_TOKEN, logger, extensions, ...o.router }));
  app.use(routeNotFound);
  app.use(problemHandler(logger));
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v1`;
  return {
    fx,
    relay,
    webhooks,
    url,
    logs,
    async api(method, path, body, headers = {}) {
      // An empty authorization header means "send none".
      const all: Record<string, string> = { authorization: `Bearer ${ADMIN_TOKEN}`, ...headers };
      if (all.authorization === '') delete all.authorization;
      const init: RequestInit = { method, headers: all };
      if (body !== undefined) {
        init.body = typeof body === 'string' ? body : JSON.stringify(body);
        (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
      }
      const res = await fetch(url + path, init);
      const text = await res.text();
      let parsed: unknown = null;
      try {
        parsed = text ? JSON.parse(text) : null;
      } catch {
        parsed = null;
      }
      return { status: res.status, headers: res.headers, text, body: parsed };
    },
    async cleanup() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await fx.cleanup();
    },
  };
}

/** Register an endpoint through the API; returns its id and secret. */
export async function register(f: WebhookFixture, url: string, events: string[] = ['*']): Promise<{ id: string; secret: string }> {
  const r = await f.api('POST', '/webhooks', { url, events });
  if (r.status !== 201) throw new Error(`registration failed: ${r.status} ${r.text}`);
  return { id: r.body.id, secret: r.body.secret };
}
