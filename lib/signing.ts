/**
 * Standard Webhooks v1 signing and verification (https://www.standardwebhooks.com). node:crypto only, so
 * the published `./signing` subpath (what a receiver imports to verify) has no runtime dependencies.
 * Encryption of secrets at rest is the webhooks plugin's (`plugins/webhooks/secrets.ts`).
 *
 * Signed content is `${id}.${timestamp}.${body}` over the exact body bytes, HMAC-SHA256 keyed with the
 * base64-decoded secret (after the `whsec_` prefix). Several secrets produce several space-separated
 * signatures, which is how rotation keeps the previous secret valid while receivers catch up.
 */
import { createHmac, createSecretKey, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Hmac, KeyObject } from 'node:crypto';

const SECRET_PREFIX = 'whsec_';
const SIGNATURE_VERSION = 'v1';
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;
const HMAC_BYTES = 32;

/** Why {@link verify} rejected a request; stable codes, safe to log and to return to a client. */
export type WebhookVerificationReason =
  | 'missing_headers'
  | 'invalid_timestamp'
  | 'timestamp_too_old'
  | 'timestamp_too_new'
  | 'no_matching_signature';

/** Thrown by {@link verify}. The message never contains a secret or a signature. */
export class WebhookVerificationError extends Error {
  override readonly name = 'WebhookVerificationError';
  constructor(
    readonly reason: WebhookVerificationReason,
    message: string,
  ) {
    super(message);
  }
}

/** Anything with a `get(name)` method, such as the Fetch API `Headers`. */
export interface HeadersLike {
  /** The header's value, or null/undefined when absent. */
  get(name: string): string | null | undefined;
}

/** Plain header records as Node's `IncomingHttpHeaders`, or a `Headers`-like object. */
export type WebhookHeaders = Record<string, string | string[] | undefined> | HeadersLike;

/** The three Standard Webhooks headers of a signed request. */
export type WebhookSignatureHeaders = Record<'webhook-id' | 'webhook-timestamp' | 'webhook-signature', string>;

/**
 * Create a new signing secret: `whsec_` followed by base64 of `bytes` random bytes.
 * @param bytes Key length, 24 to 64 (default 32).
 * @throws RangeError when `bytes` is not an integer in 24..64.
 */
export function generateSecret(bytes = 32): string {
  if (!Number.isInteger(bytes) || bytes < MIN_SECRET_BYTES || bytes > MAX_SECRET_BYTES) {
    throw new RangeError(`Secret size must be an integer from ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} bytes`);
  }
  return SECRET_PREFIX + randomBytes(bytes).toString('base64');
}

/**
 * Compute the `webhook-signature` header value: `v1,<base64>` per secret, space-separated.
 * @param message What to sign.
 * @param message.id The message id, sent as `webhook-id` (the event id: stable across retries).
 * @param message.timestamp Unix seconds; must be the same value sent in `webhook-timestamp`.
 * @param message.body The exact bytes that will be sent; re-serialising JSON after signing breaks the signature.
 * @param message.secret One `whsec_...` secret, or several during rotation (each yields one signature).
 */
export function sign({
  id,
  timestamp,
  body,
  secret,
}: {
  id: string;
  timestamp: number;
  body: string | Buffer;
  secret: string | string[];
}): string {
  if (!id) throw new Error('Webhook id must be a non-empty string');
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) {
    throw new RangeError('Webhook timestamp must be a non-negative integer number of Unix seconds');
  }
  const content = signedContent(id, timestamp, body);
  return secretKeys(secret)
    .map((key) => `${SIGNATURE_VERSION},${hmac(key, content).digest('base64')}`)
    .join(' ');
}

/**
 * The three Standard Webhooks headers for one request.
 * @param timestamp Unix seconds; defaults to now.
 */
export function signHeaders({
  id,
  body,
  secret,
  timestamp = Math.floor(Date.now() / 1000),
}: {
  id: string;
  body: string | Buffer;
  secret: string | string[];
  timestamp?: number;
}): WebhookSignatureHeaders {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': sign({ id, timestamp, body, secret }),
  };
}

/**
 * Verify a received webhook. Header names are matched case-insensitively, and `svix-*` headers are
 * accepted when the `webhook-*` ones are absent. Signatures of other versions (e.g. `v1a`) are ignored.
 * @param rawBody The body exactly as received, before any JSON parsing.
 * @param headers The request headers (a plain record or a `Headers`-like object).
 * @param secret One secret, or several to accept any of them (e.g. during rotation).
 * @param options Tolerance and clock.
 * @param options.toleranceSec How far the timestamp may be from `now`, either way (default 300).
 * @param options.now Current time in Unix seconds (default: the clock); for tests and replays.
 * @returns The verified message id and timestamp, e.g. for idempotency checks.
 * @throws WebhookVerificationError with a `reason` code when the request must be rejected.
 */
export function verify(
  rawBody: string | Buffer,
  headers: WebhookHeaders,
  secret: string | string[],
  { toleranceSec = 300, now }: { toleranceSec?: number; now?: number } = {},
): { id: string; timestamp: number } {
  if (!Number.isFinite(toleranceSec) || toleranceSec < 0) {
    throw new RangeError('toleranceSec must be a non-negative number of seconds');
  }
  // Decode secrets first: a misconfigured secret is our bug, not the sender's, so it throws a plain Error.
  const keys = secretKeys(secret);

  const id = header(headers, 'id');
  const timestampHeader = header(headers, 'timestamp');
  const signatureHeader = header(headers, 'signature');
  if (!id || !timestampHeader || !signatureHeader) {
    throw new WebhookVerificationError('missing_headers', 'Missing webhook-id, webhook-timestamp or webhook-signature header');
  }

  if (!/^\d{1,15}$/.test(timestampHeader)) {
    throw new WebhookVerificationError('invalid_timestamp', 'webhook-timestamp must be an integer number of Unix seconds');
  }
  const timestamp = Number(timestampHeader);
  const nowSec = now ?? Math.floor(Date.now() / 1000);
  if (nowSec - timestamp > toleranceSec) {
    throw new WebhookVerificationError('timestamp_too_old', 'Webhook timestamp is too old');
  }
  if (timestamp - nowSec > toleranceSec) {
    throw new WebhookVerificationError('timestamp_too_new', 'Webhook timestamp is too far in the future');
  }

  const content = signedContent(id, timestamp, rawBody);
  const expected = keys.map((key) => hmac(key, content).digest());
  const received = signatureHeader
    .split(/\s+/)
    .map((part) => part.split(','))
    .filter(([version, value]) => version === SIGNATURE_VERSION && value)
    .map(([, value]) => Buffer.from(value!, 'base64'));

  // Compare every pair without early exit on content; timingSafeEqual needs equal lengths.
  let matched = false;
  for (const candidate of received) {
    if (candidate.length !== HMAC_BYTES) continue;
    for (const digest of expected) {
      if (timingSafeEqual(candidate, digest)) matched = true;
    }
  }
  if (!matched) {
    throw new WebhookVerificationError('no_matching_signature', 'No matching webhook signature');
  }
  return { id, timestamp };
}

/** The signed content in two parts, hashed one after the other (no concatenated copy of the body). */
function signedContent(id: string, timestamp: number, body: string | Buffer): [string, string | Buffer] {
  return [`${id}.${timestamp}.`, body];
}

/** The HMAC of the signed content, to be digested by the caller (`digest('base64')` skips a Buffer and its re-encoding). */
function hmac(key: KeyObject, [prefix, body]: [string, string | Buffer]): Hmac {
  return createHmac('sha256', key)
    .update(prefix, 'utf8')
    .update(body as string, 'utf8');
}

/**
 * Decoded keys by secret string: a sender signs every request with the same few secrets, and the
 * alphabet check, base64 decoding and key import cost about as much as the HMAC of a small body. Bounded
 * (oldest out first), so rotated secrets do not pile up; a secret is only ever cached after it decoded.
 */
const KEY_CACHE_MAX = 256;
const keyCache = new Map<string, KeyObject>();

function secretKeys(secret: string | string[]): KeyObject[] {
  const secrets = Array.isArray(secret) ? secret : [secret];
  if (secrets.length === 0) throw new Error('At least one webhook secret is required');
  return secrets.map((s, i) => {
    const cached = keyCache.get(s);
    if (cached) return cached;
    const encoded = s.startsWith(SECRET_PREFIX) ? s.slice(SECRET_PREFIX.length) : s;
    // Buffer's base64 decoder skips invalid characters, so check the alphabet ourselves.
    const key = /^[A-Za-z0-9+/]+={0,2}$/.test(encoded) ? Buffer.from(encoded, 'base64') : Buffer.alloc(0);
    if (key.length === 0) {
      throw new Error(
        `Webhook secret #${i + 1} is not valid: expected whsec_ followed by base64 (create one with generateSecret() or: npx raqeem-relay secret)`,
      );
    }
    const keyObject = createSecretKey(key);
    if (keyCache.size >= KEY_CACHE_MAX) keyCache.delete(keyCache.keys().next().value!);
    keyCache.set(s, keyObject);
    return keyObject;
  });
}

function header(headers: WebhookHeaders, suffix: 'id' | 'timestamp' | 'signature'): string | undefined {
  return readHeader(headers, `webhook-${suffix}`) ?? readHeader(headers, `svix-${suffix}`);
}

function readHeader(headers: WebhookHeaders, name: string): string | undefined {
  let value: string | string[] | null | undefined;
  if (typeof headers.get === 'function') {
    value = (headers as HeadersLike).get(name);
  } else {
    const record = headers as Record<string, string | string[] | undefined>;
    const key = Object.keys(record).find((k) => k.toLowerCase() === name);
    value = key === undefined ? undefined : record[key];
  }
  // Repeated headers arrive as arrays; for the signature header they are simply more candidates.
  if (Array.isArray(value)) value = value.join(' ');
  return value ? value : undefined;
}
