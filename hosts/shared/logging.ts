/**
 * The hosts' pino logger. Credentials never reach a log line: authorization headers, signatures, secrets
 * and tokens are redacted wherever they appear one level deep (request headers, config objects, bodies).
 */
import pino from 'pino';
import type { DestinationStream, Logger as PinoLogger } from 'pino';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["webhook-signature"]',
  'req.headers["svix-signature"]',
  'res.headers["set-cookie"]',
  'headers.authorization',
  'headers["webhook-signature"]',
  '["webhook-signature"]',
  'authorization',
  'secret',
  'token',
  'signingSecret',
  'adminToken',
  'encryptionKey',
  '*.secret',
  '*.token',
  '*.signingSecret',
  '*.mentorSigningSecret',
  '*.adminToken',
  '*.encryptionKey',
  '*.password',
  '*["webhook-signature"]',
  '*.authorization',
];

export interface LoggerOptions {
  /** `LOG_LEVEL` (info). */
  level?: string;
  /** Bound on every line as `service`. */
  service: string;
  /** Where lines go (stdout by default); tests pass a stream to read them back. */
  destination?: DestinationStream;
}

export type { PinoLogger };

export function createLogger({ level = 'info', service, destination }: LoggerOptions): PinoLogger {
  const options = {
    level,
    base: { service },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
}
