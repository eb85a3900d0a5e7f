/**
 * Operations endpoints both hosts serve: liveness, readiness (the database answers), Prometheus metrics
 * and the OpenAPI document.
 */
import type { Express } from 'express';
import { collectDefaultMetrics } from 'prom-client';
import type { Registry } from 'prom-client';
import type { Database } from '../../lib/db.js';
import { HttpProblem } from '../../lib/http/problem.js';

export interface OpsOptions {
  service: string;
  db: Database;
  registry: Registry;
  /** Built lazily on the first request and cached. */
  openapi: () => object;
  /** Readiness gives up on the database after this long (default 3 s) rather than hanging the probe. */
  readyTimeoutMs?: number;
}

// prom-client throws when default metrics are registered twice on one registry (both hosts in one process).
const withDefaults = new WeakSet<Registry>();

export function collectDefaultsOnce(registry: Registry): void {
  if (withDefaults.has(registry)) return;
  withDefaults.add(registry);
  if (registry.getSingleMetric('process_cpu_user_seconds_total')) return;
  collectDefaultMetrics({ register: registry });
}

export async function databaseReady(db: Database, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    await Promise.race([db.sequelize.query('SELECT 1'), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function mountOps(app: Express, options: OpsOptions): void {
  const { service, db, registry } = options;
  const readyTimeoutMs = options.readyTimeoutMs ?? 3000;
  collectDefaultsOnce(registry);
  let openapi: object | undefined;

  app.get('/health', (_req, res) => {
    res.json({ status: 'ok', service });
  });
  app.get('/health/live', (_req, res) => {
    res.json({ status: 'ok', service });
  });
  app.get('/health/ready', async (req, res) => {
    try {
      await databaseReady(db, readyTimeoutMs);
    } catch (err) {
      req.log?.warn({ err: { message: (err as Error).message } }, 'readiness check failed');
      throw new HttpProblem(503, 'The database is unreachable', undefined, { 'retry-after': '5' });
    }
    res.json({ status: 'ok', service, database: 'ok' });
  });
  app.get('/metrics', async (_req, res) => {
    const text = await registry.metrics();
    res.type(registry.contentType).send(text);
  });
  app.get('/openapi.json', (_req, res) => {
    openapi ??= options.openapi();
    res.json(openapi);
  });
}
