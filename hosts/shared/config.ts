/**
 * Configuration from the environment (SPEC section 10). Every default lives here, is resolved once into
 * `ResolvedConfig`, and an invalid value stops start-up with one message that names the variable.
 */
import path from 'node:path';
import { z } from 'zod';
import { DEVICE_EVENTS } from '../../lib/events.js';
import type { DeviceEvent, DeviceEventType } from '../../lib/events.js';
import { parseEncryptionKeys } from '../../plugins/webhooks/keys.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const bool = (name: string, fallback: boolean) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return fallback;
      const s = v.trim().toLowerCase();
      if (s === 'true' || s === '1') return true;
      if (s === 'false' || s === '0') return false;
      ctx.addIssue({ code: 'custom', message: `${name} must be true, false, 1 or 0` });
      return z.NEVER;
    });

/** Seconds (decimals allowed) to milliseconds. */
const seconds = (name: string, fallback: number, { min = 0 } = {}) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return Math.round(fallback * 1000);
      const n = Number(v);
      if (!Number.isFinite(n) || n < min) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a number of seconds >= ${min}` });
        return z.NEVER;
      }
      return Math.round(n * 1000);
    });

const int = (name: string, fallback: number, { min = 0, max = Number.MAX_SAFE_INTEGER } = {}) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return fallback;
      const n = Number(v);
      if (!Number.isInteger(n) || n < min || n > max) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a whole number from ${min} to ${max}` });
        return z.NEVER;
      }
      return n;
    });

const url = (name: string) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return undefined;
      try {
        const u = new URL(v.trim());
        if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('protocol');
        return u.toString().replace(/\/+$/, '');
      } catch {
        ctx.addIssue({ code: 'custom', message: `${name} must be an http(s) URL` });
        return z.NEVER;
      }
    });

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

/** Bytes with an optional unit: `1048576`, `512kb`, `1mb`. */
const bytes = (name: string, fallback: number) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return fallback;
      const m = /^(\d+)\s*(b|kb|mb)?$/i.exec(v.trim());
      if (!m) {
        ctx.addIssue({ code: 'custom', message: `${name} must be a size like 1048576, 512kb or 1mb` });
        return z.NEVER;
      }
      const unit = (m[2] ?? 'b').toLowerCase();
      return Number(m[1]) * (unit === 'mb' ? 1024 * 1024 : unit === 'kb' ? 1024 : 1);
    });

/**
 * `CORS_ORIGINS`: `*` (any origin) or comma-separated origins (`https://dash.example.com,http://localhost:5173`),
 * each reduced to its canonical origin (scheme, host, port) as browsers send it in `Origin`.
 */
const corsOrigins = z
  .string()
  .optional()
  .transform((v, ctx): '*' | string[] | undefined => {
    if (v === undefined || v.trim() === '') return undefined;
    if (v.trim() === '*') return '*';
    const origins: string[] = [];
    for (const part of v
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean)) {
      let u: URL | undefined;
      try {
        u = new URL(part);
      } catch {
        u = undefined;
      }
      if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:') || u.pathname !== '/' || u.search || u.hash || u.username) {
        ctx.addIssue({
          code: 'custom',
          message: `CORS_ORIGINS must be * or comma-separated origins like https://dash.example.com (scheme, host, optional port; no path): ${JSON.stringify(part.slice(0, 100))} is not one`,
        });
        return z.NEVER;
      }
      origins.push(u.origin);
    }
    return origins.length > 0 ? [...new Set(origins)] : undefined;
  });

/** One boolean variable per device event type (`FORWARD_METRICS`, ...), from the event catalogue. */
const toggleVariables = Object.fromEntries(DEVICE_EVENTS.map((e) => [e.toggle, bool(e.toggle, true)])) as {
  [E in DeviceEvent as E['toggle']]: ReturnType<typeof bool>;
};

const envSchema = z.object({
  PORT: int('PORT', 0, { min: 0, max: 65535 }).optional(),
  DATABASE_URL: optionalString,
  DATA_DIR: optionalString,
  MENTOR_API_URL: url('MENTOR_API_URL'),
  MENTOR_SIGNING_SECRET: optionalString,
  DEVICES_API_URL: url('DEVICES_API_URL'),
  FORWARD_TIMEOUT: seconds('FORWARD_TIMEOUT', 10, { min: 0.001 }),
  FORWARD_MAX_RETRIES: int('FORWARD_MAX_RETRIES', 3, { max: 100 }),
  FORWARD_BACKOFF_BASE: seconds('FORWARD_BACKOFF_BASE', 1),
  RELAY_DISPATCH: bool('RELAY_DISPATCH', true),
  ...toggleVariables,
  RELAY_ADMIN_TOKEN: optionalString,
  RELAY_ENCRYPTION_KEY: optionalString,
  RELAY_ENCRYPTION_KEYS: optionalString,
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: bool('WEBHOOK_ALLOW_PRIVATE_NETWORKS', false),
  WEBHOOK_ALLOWED_HOSTS: optionalString,
  WEBHOOK_DISABLE_AFTER: seconds('WEBHOOK_DISABLE_AFTER', 5 * 24 * 3600, { min: 1 }),
  RELAY_RETENTION_DAYS: int('RELAY_RETENTION_DAYS', 30, { min: 1, max: 3650 }),
  BODY_LIMIT: bytes('BODY_LIMIT', 1024 * 1024),
  SCREENSHOT_MAX_BYTES: bytes('SCREENSHOT_MAX_BYTES', 10 * 1024 * 1024),
  INGEST_MAX_ITEMS: int('INGEST_MAX_ITEMS', 1000, { min: 1, max: 100_000 }),
  DEVICE_AUTH: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const mode = (v ?? '').trim().toLowerCase() || 'none';
      if (mode !== 'token' && mode !== 'none') {
        ctx.addIssue({
          code: 'custom',
          message: 'DEVICE_AUTH must be token (each device authenticates with its own bearer token) or none (open, the default)',
        });
        return z.NEVER;
      }
      return mode;
    }),
  MENTOR_READ_TOKEN: optionalString,
  CORS_ORIGINS: corsOrigins,
  MENTOR_PUBLIC_URL: url('MENTOR_PUBLIC_URL'),
  HTTP_HEADERS_TIMEOUT: seconds('HTTP_HEADERS_TIMEOUT', 10, { min: 0.1 }),
  HTTP_REQUEST_TIMEOUT: seconds('HTTP_REQUEST_TIMEOUT', 60, { min: 0.1 }),
  HTTP_KEEP_ALIVE_TIMEOUT: seconds('HTTP_KEEP_ALIVE_TIMEOUT', 5, { min: 0.1 }),
  DEVICE_RATE_LIMIT: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === '') return undefined;
      const n = Number(v);
      if (!Number.isFinite(n) || n <= 0) {
        ctx.addIssue({ code: 'custom', message: 'DEVICE_RATE_LIMIT must be a number of requests per second > 0 (unset: no limit)' });
        return z.NEVER;
      }
      return n;
    }),
  SQLITE_SYNCHRONOUS: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const level = (v ?? '').trim().toLowerCase() || 'normal';
      if (level !== 'normal' && level !== 'full') {
        ctx.addIssue({
          code: 'custom',
          message: 'SQLITE_SYNCHRONOUS must be normal (survives a process crash; the default) or full (also survives power loss)',
        });
        return z.NEVER;
      }
      return level;
    }),
  LOG_LEVEL: z
    .string()
    .optional()
    .transform((v, ctx) => {
      const level = (v ?? '').trim().toLowerCase() || 'info';
      if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(level)) {
        ctx.addIssue({ code: 'custom', message: 'LOG_LEVEL must be one of fatal, error, warn, info, debug, trace, silent' });
        return z.NEVER;
      }
      return level;
    }),
});

/** Whether each device event type is forwarded to the mentor (`FORWARD_*`). */
/** Every variable `loadConfig` reads (the docs check holds the docs to this list). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(envSchema.shape);

export type Toggles = Record<DeviceEventType, boolean>;

export interface ResolvedConfig {
  service: 'devices' | 'mentor';
  port: number;
  dataDir: string;
  databaseUrl: string;
  mentorApiUrl: string | undefined;
  mentorSigningSecret: string | undefined;
  devicesApiUrl: string | undefined;
  forward: {
    timeoutMs: number;
    maxRetries: number;
    backoffBaseMs: number;
    toggles: Toggles;
  };
  adminToken: string | undefined;
  /** `RELAY_ENCRYPTION_KEYS` or `RELAY_ENCRYPTION_KEY`: one key, or several newest first (comma-separated). */
  encryptionKey: string | undefined;
  webhooks: { allowPrivateNetworks: boolean; allowedHosts: string[]; disableAfterMs: number };
  /** Run this host's dispatcher (false: ingest only; `raqeem-relay worker` processes deliver). */
  dispatch: boolean;
  retentionDays: number;
  bodyLimit: number;
  screenshotMaxBytes: number;
  /** Records in one metrics, activities or alerts request (an array body), stored in one transaction. */
  ingestMaxItems: number;
  /** `DEVICE_AUTH`: `token` = every device route requires that device's bearer token; `none` = open (default). */
  deviceAuth: 'token' | 'none';
  /** `MENTOR_READ_TOKEN`: when set, the mentor's read API requires it as a bearer token. */
  mentorReadToken: string | undefined;
  /** `CORS_ORIGINS`: browser origins allowed to call this host (`*` = any); undefined = no CORS headers. */
  corsOrigins: '*' | string[] | undefined;
  /** `MENTOR_PUBLIC_URL`: the mentor's URL as browsers reach it, for screenshot links; undefined = from the request's Host. */
  mentorPublicUrl: string | undefined;
  /** Node's server timeouts (ms): all headers, the whole request, an idle keep-alive connection. */
  http: { headersTimeoutMs: number; requestTimeoutMs: number; keepAliveTimeoutMs: number };
  /** Requests per second one device may make to its `/devices/{id}/...` routes; undefined: unlimited. */
  deviceRateLimit: number | undefined;
  logLevel: string;
  /** `SQLITE_SYNCHRONOUS`: SQLite's `PRAGMA synchronous` (`normal`); ignored on PostgreSQL. */
  sqliteSynchronous: 'normal' | 'full';
}

const DEFAULT_PORTS = { devices: 30080, mentor: 30081 } as const;

/**
 * Parse the environment for one host. Throws `ConfigError` whose message names every invalid variable,
 * e.g. `Invalid configuration: FORWARD_TIMEOUT must be a number of seconds >= 0.001 (got "abc")`.
 */
export function loadConfig(service: 'devices' | 'mentor', env: NodeJS.ProcessEnv = process.env): ResolvedConfig {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '');
      const raw = env[name];
      // Secrets are never echoed back, not even when they are malformed.
      const shown = /SECRET|TOKEN|KEY|DATABASE_URL/.test(name) || raw === undefined ? '' : ` (got ${JSON.stringify(raw)})`;
      return `${issue.message}${shown}`;
    });
    throw new ConfigError(`Invalid configuration: ${problems.join('; ')}`);
  }
  const e = parsed.data;
  const dataDir = path.resolve(e.DATA_DIR ?? './data');
  const databaseUrl = e.DATABASE_URL ?? `sqlite:${path.join(dataDir, `${service}.sqlite`)}`;
  if (e.HTTP_HEADERS_TIMEOUT > e.HTTP_REQUEST_TIMEOUT) {
    throw new ConfigError('Invalid configuration: HTTP_HEADERS_TIMEOUT must not be longer than HTTP_REQUEST_TIMEOUT');
  }
  if (!/^(sqlite:|postgres(ql)?:\/\/)/.test(databaseUrl)) {
    throw new ConfigError('Invalid configuration: DATABASE_URL must start with sqlite: or postgres://');
  }
  const keysVariable = e.RELAY_ENCRYPTION_KEYS !== undefined ? 'RELAY_ENCRYPTION_KEYS' : 'RELAY_ENCRYPTION_KEY';
  try {
    parseEncryptionKeys(e.RELAY_ENCRYPTION_KEYS ?? e.RELAY_ENCRYPTION_KEY);
  } catch (err) {
    // The message names the key's position, never its value.
    throw new ConfigError(`Invalid configuration: ${keysVariable}: ${(err as Error).message}`);
  }
  return {
    service,
    port: e.PORT ?? DEFAULT_PORTS[service],
    dataDir,
    databaseUrl,
    mentorApiUrl: e.MENTOR_API_URL,
    mentorSigningSecret: e.MENTOR_SIGNING_SECRET,
    devicesApiUrl: e.DEVICES_API_URL,
    forward: {
      timeoutMs: e.FORWARD_TIMEOUT,
      maxRetries: e.FORWARD_MAX_RETRIES,
      backoffBaseMs: e.FORWARD_BACKOFF_BASE,
      toggles: Object.fromEntries(DEVICE_EVENTS.map((d) => [d.type, e[d.toggle]])) as Toggles,
    },
    adminToken: e.RELAY_ADMIN_TOKEN,
    // RELAY_ENCRYPTION_KEYS (newest first) wins over the single RELAY_ENCRYPTION_KEY.
    encryptionKey: e.RELAY_ENCRYPTION_KEYS ?? e.RELAY_ENCRYPTION_KEY,
    webhooks: {
      allowPrivateNetworks: e.WEBHOOK_ALLOW_PRIVATE_NETWORKS,
      allowedHosts: (e.WEBHOOK_ALLOWED_HOSTS ?? '')
        .split(',')
        .map((h) => h.trim().toLowerCase())
        .filter(Boolean),
      disableAfterMs: e.WEBHOOK_DISABLE_AFTER,
    },
    dispatch: e.RELAY_DISPATCH,
    retentionDays: e.RELAY_RETENTION_DAYS,
    bodyLimit: e.BODY_LIMIT,
    screenshotMaxBytes: e.SCREENSHOT_MAX_BYTES,
    ingestMaxItems: e.INGEST_MAX_ITEMS,
    deviceAuth: e.DEVICE_AUTH,
    mentorReadToken: e.MENTOR_READ_TOKEN,
    corsOrigins: e.CORS_ORIGINS,
    mentorPublicUrl: e.MENTOR_PUBLIC_URL,
    http: {
      headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT,
      requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT,
      keepAliveTimeoutMs: e.HTTP_KEEP_ALIVE_TIMEOUT,
    },
    deviceRateLimit: e.DEVICE_RATE_LIMIT,
    logLevel: e.LOG_LEVEL,
    sqliteSynchronous: e.SQLITE_SYNCHRONOUS,
  };
}
