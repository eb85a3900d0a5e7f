/**
 * The hosts' pino logger. Credentials never reach a log line: authorization headers, signatures, secrets
 * and tokens are redacted wherever they appear one level deep (request headers, config objects, bodies).
 */
import pino from 'pino';
import type { DestinationStream, Logger as PinoLogger } from 'pino';

const REDACTED = '[redacted]';

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
  /** Configured secret values (`secretsOf(config)`): replaced wherever they appear in a line. */
  secrets?: readonly (string | undefined)[];
}

export type { PinoLogger };

export function createLogger({ level = 'info', service, destination, secrets = [] }: LoggerOptions): PinoLogger {
  const scrub = secretScrubber(secrets);
  const options = {
    level,
    base: { service },
    redact: { paths: REDACT_PATHS, censor: REDACTED },
    timestamp: pino.stdTimeFunctions.isoTime,
    // The last line of defence: a configured secret sent in a place nobody thought of (a body field, a
    // path segment, an error message) is replaced in the serialised line itself.
    hooks: { streamWrite: scrub },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** The configured secrets a host's log lines must never contain. */
export function secretsOf(config: {
  adminToken?: string;
  mentorSigningSecret?: string;
  encryptionKey?: string;
  mentorReadToken?: string;
}): string[] {
  const keys = config.encryptionKey?.split(/[\s,]+/) ?? [];
  return [config.adminToken, config.mentorSigningSecret, config.encryptionKey, ...keys, config.mentorReadToken].filter(
    (s): s is string => !!s,
  );
}

/** Too short a value would be replaced inside unrelated words; configured secrets are far longer. */
const MIN_SECRET_LENGTH = 8;

/** Standard Webhooks secrets are recognisable (endpoint secrets are in the database, not the configuration). */
const WEBHOOK_SECRET = /whsec_[A-Za-z0-9+/=%_-]{16,}/g;

/** A function replacing every form of the secrets a line can carry them in, and anything shaped like a webhook secret. */
function secretScrubber(secrets: readonly (string | undefined)[]): (line: string) => string {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (!secret || secret.length < MIN_SECRET_LENGTH) continue;
    // As sent, as JSON escapes it, as a URL carries it, and the key material of a `whsec_` secret alone.
    for (const s of [secret, secret.replace(/^whsec_/, '')]) {
      if (s.length < MIN_SECRET_LENGTH) continue;
      forms.add(s);
      forms.add(JSON.stringify(s).slice(1, -1));
      forms.add(encodeURIComponent(s));
      forms.add(JSON.stringify(encodeURIComponent(s)).slice(1, -1));
    }
  }
  if (forms.size === 0) return (line) => line.replace(WEBHOOK_SECRET, REDACTED);
  const escaped = [...forms].sort((a, b) => b.length - a.length).map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const pattern = new RegExp(escaped.join('|'), 'g');
  return (line) => line.replace(pattern, REDACTED).replace(WEBHOOK_SECRET, REDACTED);
}

/** Query parameters and headers whose name says they carry a credential. */
const CREDENTIAL_NAME = /token|key|secret|signature|password|passwd|authorization|cookie|session|credential|auth/i;

function redactQueryString(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const params = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const rawName = eq < 0 ? pair : pair.slice(0, eq);
      let name = rawName;
      try {
        name = decodeURIComponent(rawName.replace(/\+/g, ' '));
      } catch {
        // A malformed escape still names what it names.
      }
      return CREDENTIAL_NAME.test(name) ? `${rawName}=${REDACTED}` : pair;
    });
  return `${url.slice(0, q)}?${params.join('&')}`;
}

const redactByName = (o: unknown): unknown =>
  o && typeof o === 'object' ? Object.fromEntries(Object.entries(o).map(([k, v]) => [k, CREDENTIAL_NAME.test(k) ? REDACTED : v])) : o;

/**
 * pino-http's `req` serializer (after the standard one): any query parameter or header whose name looks like
 * a credential is redacted, in the logged `url` as well, wherever the client put it (`?access_token=`,
 * `X-Api-Key`, a cookie).
 */
export function redactRequest(req: Record<string, unknown>): Record<string, unknown> {
  const out = { ...req };
  if (typeof out.url === 'string') out.url = redactQueryString(out.url);
  if (out.query) out.query = redactByName(out.query);
  if (out.headers) out.headers = redactByName(out.headers);
  if (out.params) out.params = redactByName(out.params);
  return out;
}
