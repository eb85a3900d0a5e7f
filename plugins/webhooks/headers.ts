/**
 * Endpoint headers: extra request headers sent with every delivery to one endpoint (`Authorization` for a
 * SIEM or time-series ingest API, `X-Api-Key`, ...). Their values are credentials, so they are stored
 * encrypted like secrets and the management API shows names only.
 *
 * Names the relay sets itself or that describe the connection are refused: a subscriber's header must never
 * be able to forge a signature (`webhook-*`), change how the body is framed or read, or retarget the request.
 */
import { z } from 'zod';

/** Refused names (lower case); `webhook-*` is refused as a prefix. */
export const RESERVED_HEADERS = [
  'content-type',
  'content-length',
  'content-encoding',
  'host',
  'transfer-encoding',
  'connection',
  'keep-alive',
  'upgrade',
  'te',
  'trailer',
  'expect',
  'proxy-connection',
  'idempotency-key',
] as const;

export const MAX_HEADERS = 20;
const MAX_NAME = 64;
const MAX_VALUE = 4096;
/** RFC 9110 token. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Visible ASCII and Latin-1, spaces and tabs inside; no CR, LF, NUL or other controls. */
const VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Why `name` cannot be an endpoint header, or null. */
export function headerNameProblem(name: string): string | null {
  if (name.length === 0 || name.length > MAX_NAME || !TOKEN.test(name))
    return `${JSON.stringify(name.slice(0, MAX_NAME))} is not a valid header name (letters, digits and !#$%&'*+.^_\`|~- only, at most ${MAX_NAME})`;
  const lower = name.toLowerCase();
  if (lower.startsWith('webhook-') || (RESERVED_HEADERS as readonly string[]).includes(lower))
    return `${name} is set by the relay or describes the connection and cannot be overridden (reserved: webhook-*, ${RESERVED_HEADERS.join(', ')})`;
  return null;
}

/** The request body's `headers`: an object of header name to value; `null` or `{}` removes them all. */
export const endpointHeadersSchema = z
  .record(
    z.string(),
    z
      .string({ error: 'must be a string' })
      .max(MAX_VALUE, `must be at most ${MAX_VALUE} characters`)
      .regex(VALUE, 'must not contain CR, LF, NUL or other control characters'),
    { error: 'must be an object of header names to string values' },
  )
  .superRefine((headers, ctx) => {
    const names = Object.keys(headers);
    if (names.length > MAX_HEADERS) ctx.addIssue({ code: 'custom', message: `at most ${MAX_HEADERS} headers` });
    const seen = new Set<string>();
    for (const name of names) {
      const problem = headerNameProblem(name);
      if (problem) ctx.addIssue({ code: 'custom', path: [name], message: problem });
      const lower = name.toLowerCase();
      if (seen.has(lower)) ctx.addIssue({ code: 'custom', path: [name], message: `${name} is given twice (names are case-insensitive)` });
      seen.add(lower);
    }
  })
  .nullable()
  .describe(
    'Request headers sent with every delivery to this endpoint (stored encrypted; reads show names only). Replaces all; null or {} removes them. Reserved: webhook-*, content-type, content-length, host, transfer-encoding, connection and other hop-by-hop names',
  );

/** Stored form: the JSON object (encrypted by the store when a key is configured). */
export function headersToStore(headers: Record<string, string> | null | undefined): string | null {
  return headers && Object.keys(headers).length > 0 ? JSON.stringify(headers) : null;
}

export function headersFromStore(plain: string): Record<string, string> {
  return JSON.parse(plain) as Record<string, string>;
}
