/**
 * The seed's forwarding design, ported literally to Node for comparison (reference/DATA_FORWARDING.md):
 * an Express app that stores the record through an ORM, then fires `post_with_retry` as an un-awaited
 * promise (the seed's `asyncio.create_task`) and answers `{"status": "ok"}` at once. No outbox: a pending
 * forward lives only in memory, so a crash loses it, and a failing mentor is retried 3 times (1 s, 2 s, 4 s)
 * and then dropped with an error log. node-fetch as the seed's `httpx`-style client.
 *
 * Only what the benchmark drives: register, metrics, health. It opens the database through `lib/db.ts`
 * (SQLite WAL, the same pool on PostgreSQL) so that the comparison is between designs, not pragmas.
 *
 * Run: DATABASE_URL=... MENTOR_API_URL=... PORT=... node --import tsx bench/baselines/seed-devices.ts
 */
import { randomUUID } from 'node:crypto';
import express from 'express';
import type { NextFunction, Request, Response } from 'express';
import fetch from 'node-fetch';
import { DataTypes, Model } from 'sequelize';
import { openDatabase } from '../../lib/db.js';

const MENTOR_API_URL = process.env.MENTOR_API_URL?.replace(/\/+$/, '') || undefined;
const FORWARD_TIMEOUT = Number(process.env.FORWARD_TIMEOUT ?? 10) * 1000;
const FORWARD_MAX_RETRIES = 3;
const quiet = process.env.LOG_LEVEL === 'warn' || process.env.LOG_LEVEL === 'error';

const db = openDatabase(process.env.DATABASE_URL ?? 'sqlite::memory:');
const sequelize = db.sequelize;

class Device extends Model {}
Device.init(
  {
    deviceid: { type: DataTypes.STRING(128), primaryKey: true },
    device_name: DataTypes.STRING,
    device_type: DataTypes.STRING,
    os: DataTypes.STRING,
    last_seen: DataTypes.DATE,
    is_online: DataTypes.BOOLEAN,
  },
  { sequelize, tableName: 'seed_devices', timestamps: false },
);

class DeviceMetric extends Model {}
DeviceMetric.init(
  {
    metricid: { type: DataTypes.UUID, primaryKey: true },
    deviceid: { type: DataTypes.STRING(128), allowNull: false },
    timestamp: DataTypes.DATE,
    cpu_usage: DataTypes.FLOAT,
    cpu_temp: DataTypes.FLOAT,
    memory_total: DataTypes.BIGINT,
    memory_used: DataTypes.BIGINT,
    swap_used: DataTypes.BIGINT,
    disk_total: DataTypes.BIGINT,
    disk_used: DataTypes.BIGINT,
    net_bytes_in: DataTypes.BIGINT,
    net_bytes_out: DataTypes.BIGINT,
  },
  { sequelize, tableName: 'seed_device_metrics', timestamps: false },
);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The seed's `post_with_retry`: up to 3 tries, sleeping 1 s, 2 s, 4 s after failures; True/False. */
async function postWithRetry(url: string, json: unknown, maxRetries = FORWARD_MAX_RETRIES, timeout = FORWARD_TIMEOUT): Promise<boolean> {
  for (let attempt = 0; attempt < maxRetries; attempt++) {
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(json),
        signal: AbortSignal.timeout(timeout),
      });
      await res.arrayBuffer();
      if (res.ok) {
        if (!quiet) console.log(`INFO: Successfully forwarded to ${url}`);
        return true;
      }
      throw new Error(`HTTP ${res.status}`);
    } catch (err) {
      console.warn(`WARNING: Failed to forward to mentor backend (attempt ${attempt + 1}/${maxRetries}): ${(err as Error).message}`);
      await sleep(1000 * 2 ** attempt);
    }
  }
  console.error(`ERROR: Forward failed after ${maxRetries} retries: ${url}`);
  return false;
}

const app = express();
app.use(express.json());

const route = (fn: (req: Request, res: Response) => Promise<void>) => (req: Request, res: Response, next: NextFunction) =>
  fn(req, res).catch(next);

app.get('/health', (_req, res) => {
  res.json({ status: 'ok', service: 'seed-devices' });
});

app.post(
  '/api/v1/devices/register',
  route(async (req, res) => {
    const body = req.body as Record<string, unknown>;
    const record = { ...body, deviceid: String(body.deviceid), last_seen: new Date(), is_online: true };
    const [device, created] = await Device.upsert(record);
    if (MENTOR_API_URL) void postWithRetry(`${MENTOR_API_URL}/devices/register`, device.toJSON());
    res.json({ deviceid: record.deviceid, created: created ? true : null, updated: created ? null : true });
  }),
);

app.post(
  '/api/v1/devices/:id/metrics',
  route(async (req, res) => {
    const deviceid = String(req.params.id);
    // 1. Validate device exists
    const device = await Device.findByPk(deviceid);
    if (!device) {
      res.status(404).json({ detail: 'Device not found' });
      return;
    }
    // 2. Store metrics in local database
    const metric = await DeviceMetric.create({ ...(req.body as object), metricid: randomUUID(), deviceid, timestamp: new Date() });
    // 3. Forward to Mentor Backend (if configured): fire and forget
    if (MENTOR_API_URL) void postWithRetry(`${MENTOR_API_URL}/devices/metrics`, metric.toJSON());
    // 4. Return success immediately
    res.json({ status: 'ok' });
  }),
);

await sequelize.sync();
const port = Number(process.env.PORT ?? 30080);
app.listen(port, '127.0.0.1', () => {
  if (!quiet) console.log(`seed devices backend on ${port}`);
});
