/**
 * Property-based bad input for the HTTP routes (SPEC section 9), shared by the `fuzz.*.test.ts` files.
 * Every generated request carries at least one defect by construction: a field with a value its schema
 * cannot accept, a missing required field, one bad item in an otherwise valid array, malformed JSON, the
 * wrong content type, a body over the limit, a bad or unknown path id, a missing or wrong token. The
 * property for each: a 4xx answer as application/problem+json (never 2xx, never 5xx), the process still
 * serving, no row added or changed anywhere, and `Object.prototype` untouched. Not a test file itself.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import { QueryTypes } from 'sequelize';
import type { Database } from '../lib/db.js';

/** What a field accepts; `invalid(kind)` yields only values it refuses. */
export type Kind =
  // `free`: free text, where tab, line feed and carriage return are allowed (lib/http/strings.ts).
  | { t: 'text'; max: number; required?: boolean; min1?: boolean; free?: boolean }
  | { t: 'num'; min: number; max: number; required?: boolean }
  | { t: 'int'; min: number; max: number; required?: boolean }
  | { t: 'enum'; values: readonly string[]; required?: boolean }
  | { t: 'id'; required?: boolean }
  | { t: 'iso'; required?: boolean }
  | { t: 'bool'; required?: boolean }
  | { t: 'strings'; required?: boolean; known: readonly string[] };

export type Spec = Record<string, Kind>;

const notString = fc.oneof(
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.boolean(),
  fc.constant({}),
  fc.constant([]),
  fc.array(fc.string(), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 }),
);
const notNumber = fc.oneof(
  fc.string({ maxLength: 12 }),
  fc.boolean(),
  fc.constant({}),
  fc.constant([1]),
  fc.constantFrom('1', '0', 'NaN', 'Infinity', '1e3', ''),
);

/** Control characters every field refuses; single-line fields also refuse tab, line feed and carriage return. */
const CONTROLS = [...Array(32).keys(), ...Array.from({ length: 33 }, (_, i) => 0x7f + i)].map((c) => String.fromCharCode(c));
const controlIn = (free: boolean) =>
  fc
    .tuple(
      fc.string({ maxLength: 12 }),
      fc.constantFrom(...CONTROLS.filter((c) => !free || !'\t\n\r'.includes(c))),
      fc.string({ maxLength: 12 }),
    )
    .map(([a, c, b]) => `${a}${c}${b}`);
/** A lone surrogate cannot be stored as UTF-8. */
const loneSurrogate = fc
  .tuple(fc.string({ maxLength: 8 }), fc.constantFrom('\ud800', '\udbff', '\udc00', '\udfff'))
  .map(([a, s]) => `${a}${s}`);

/** Strings a text field of `max` characters must refuse. */
const badText = (max: number, min1 = false, free = false) =>
  fc.oneof(
    notString,
    fc.string({ minLength: max + 1, maxLength: max + 40 }),
    controlIn(free),
    controlIn(free),
    loneSurrogate,
    ...(min1 ? [fc.constant('')] : []),
  );

const badId = fc.oneof(
  notString,
  controlIn(false),
  fc.constantFrom(
    '',
    ' ',
    '.hidden',
    '-dash',
    '_under',
    'a b',
    'a/b',
    'a\\b',
    'dev\u0000ice',
    'café',
    '🙂',
    'a'.repeat(129),
    '../etc/passwd',
    '%2e%2e',
  ),
  fc.string({ minLength: 1, maxLength: 20 }).map((s) => ` ${s}`),
);

export function invalid(k: Kind): fc.Arbitrary<unknown> {
  switch (k.t) {
    case 'text':
      return badText(k.max, k.min1, k.free);
    case 'num':
      // An unbounded number refuses only non-numbers (JSON has no NaN or Infinity).
      if (!Number.isFinite(k.max * 10) || !Number.isFinite(k.min * 10)) return notNumber;
      // Judged after a JSON round trip: fast-check orders -0 below 0, but JSON sends it as 0 (valid).
      return fc.oneof(
        notNumber,
        fc
          .oneof(
            fc.double({ min: k.max, max: k.max * 10 + 1e6, noNaN: true, minExcluded: true, noDefaultInfinity: true }),
            fc.double({ max: k.min, min: k.min * 10 - 1e6, noNaN: true, maxExcluded: true, noDefaultInfinity: true }),
          )
          .filter((x) => {
            const sent = JSON.parse(JSON.stringify(x)) as number;
            return sent > k.max || sent < k.min;
          }),
      );
    case 'int':
      return fc.oneof(
        notNumber,
        fc.integer({ min: k.max + 1, max: k.max + 1_000_000 }),
        fc.integer({ min: -1_000_000, max: k.min - 1 }),
        fc.double({ min: Math.max(k.min, 0) + 0.01, max: Math.min(k.max, 1e6) - 0.01, noNaN: true }).filter((x) => !Number.isInteger(x)),
        fc.constantFrom(2 ** 53 + 2, 1e300),
      );
    case 'enum':
      return fc.oneof(
        notString,
        fc.string({ maxLength: 12 }).filter((s) => !k.values.includes(s)),
        fc.constantFrom(...k.values.map((v) => v.toUpperCase()), ...k.values.map((v) => ` ${v}`)),
      );
    case 'id':
      return badId;
    case 'iso':
      return fc.oneof(
        notString,
        fc.constantFrom(
          '',
          'yesterday',
          'not a date',
          '2025-13-45T99:99:99Z',
          'x'.repeat(65),
          '2025-01-01T00:00:00Z\u0000',
          '2025-01-01\u001bT00:00:00Z',
        ),
      );
    case 'bool':
      return fc.oneof(fc.constantFrom('true', 'false', 1, 0, 'yes'), fc.constant({}), fc.constant([]));
    case 'strings':
      return fc.oneof(
        notString.filter((v) => !Array.isArray(v) || v.length === 0),
        fc.constant([]),
        fc.array(fc.oneof(fc.integer(), fc.constant(null), fc.constant({})), { minLength: 1, maxLength: 3 }),
        fc.array(
          fc.string({ maxLength: 10 }).filter((s) => !k.known.includes(s) && s !== '*' && !s.endsWith('.*')),
          { minLength: 1, maxLength: 3 },
        ),
      );
  }
}

/** An object body: the valid base with 1-3 fields made invalid, or a required field removed. */
export function badObject(spec: Spec, base: Record<string, unknown>): fc.Arbitrary<unknown> {
  const keys = Object.keys(spec);
  const required = keys.filter((k) => spec[k]!.required);
  const mutate = fc
    .uniqueArray(fc.constantFrom(...keys), { minLength: 1, maxLength: Math.min(3, keys.length) })
    .chain((picked) => fc.tuple(...picked.map((k) => invalid(spec[k]!).map((v) => [k, v] as const))))
    .map((pairs) => ({ ...base, ...Object.fromEntries(pairs) }));
  const arbs: Array<fc.Arbitrary<unknown>> = [mutate, mutate];
  if (required.length)
    arbs.push(fc.constantFrom(...required).map((k) => Object.fromEntries(Object.entries(base).filter(([key]) => key !== k))));
  // Prototype-pollution keys ride along with a real defect (unknown keys alone are ignored, not refused).
  arbs.push(
    mutate.map(
      (o) =>
        JSON.parse(
          `{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}, ${JSON.stringify(o).slice(1)}`,
        ) as unknown,
    ),
  );
  return fc.oneof(...arbs);
}

/** An array body: valid items with one bad item somewhere among them (nothing may be stored). */
export function badArray(spec: Spec, base: Record<string, unknown>): fc.Arbitrary<unknown> {
  return fc
    .tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 4 }), badObject(spec, base))
    .map(([before, after, bad]) => [...Array(before).fill(base), bad, ...Array(after).fill(base)]);
}

export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
  /** Which defect this is, for the failure message. */
  defect: string;
}

const JSON_CT = { 'content-type': 'application/json' };

/** Defects of the request as a whole, around a valid body. */
export function structural(
  method: string,
  path: string,
  valid: unknown,
  opts: { limit: number; expectsArray: boolean; emptyBodyOk?: boolean; arrayOk?: boolean },
): fc.Arbitrary<FuzzRequest> {
  const text = JSON.stringify(valid);
  const req = (defect: string, body: string | Buffer | undefined, headers: Record<string, string> = JSON_CT): FuzzRequest => ({
    method,
    path,
    headers,
    body,
    defect,
  });
  return fc.oneof(
    fc.integer({ min: 1, max: Math.max(1, text.length - 1) }).map((n) => req('truncated JSON', text.slice(0, n))),
    fc
      .string({ minLength: 1, maxLength: 40 })
      .filter((s) => {
        try {
          JSON.parse(s);
          return false;
        } catch {
          return true;
        }
      })
      .map((s) => req('not JSON', s)),
    fc
      .constantFrom(
        'text/plain',
        'application/x-www-form-urlencoded',
        'application/xml',
        'multipart/form-data; boundary=x',
        'application/jsonx',
        'image/png',
      )
      .map((ct) => req(`content type ${ct}`, text, { 'content-type': ct })),
    fc.constant(req('no content type', text, {})),
    // An empty body is no JSON text; routes where "no body" means "no options" (reconcile) opt out.
    ...(opts.emptyBodyOk ? [] : [fc.constant(req('empty JSON body', ''))]),
    fc
      .constantFrom('{"a":1}}', '[1,2,]', '{"a":1,}', `${text}garbage`, '\u00ef\u00bb\u00bf{}', '{"a":"\\x00"}', '1e99999x')
      .map((b) => req('malformed JSON', b)),
    (opts.expectsArray
      ? fc.oneof(
          fc.constant(valid),
          fc.jsonValue().filter((v) => !Array.isArray(v)),
        )
      : fc.oneof(
          ...(opts.arrayOk ? [] : [fc.constant([valid])]),
          fc.jsonValue({ maxDepth: 2 }).filter((v) => v === null || typeof v !== 'object' || (Array.isArray(v) && !opts.arrayOk)),
        )
    ).map((v) => req('wrong JSON shape', JSON.stringify(opts.expectsArray && v === valid ? (valid as unknown[])[0] : v))),
    fc
      .integer({ min: 1, max: 3 })
      .map((k) =>
        req(
          'over BODY_LIMIT',
          JSON.stringify(
            opts.expectsArray
              ? [...(valid as unknown[]), { pad: 'x'.repeat(opts.limit * k) }]
              : { ...(valid as object), pad: 'x'.repeat(opts.limit * k) },
          ),
        ),
      ),
    fc.integer({ min: 200, max: 5000 }).map((d) => req('deep nesting', `${'['.repeat(d)}${']'.repeat(d)}`)),
    invalidUtf8(text).map((b) => req('invalid UTF-8', b)),
  );
}

/** Byte sequences no UTF-8 decoder accepts: stray continuation, truncated, overlong, surrogate, out of range. */
const BAD_UTF8 = [
  [0x80],
  [0xff],
  [0xfe],
  [0xc3],
  [0xc0, 0xaf],
  [0xe0, 0x80, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0xf5, 0x80, 0x80, 0x80],
  [0xe2, 0x82],
];

/** The valid body with bad bytes inside one of its strings (a key when it has no string values). */
function invalidUtf8(text: string): fc.Arbitrary<Buffer> {
  const quotes = [...text.matchAll(/"/g)].map((m) => m.index! + 1);
  return fc.tuple(fc.constantFrom(...(quotes.length ? quotes : [0])), fc.constantFrom(...BAD_UTF8)).map(([at, bad]) => {
    return Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from(bad), Buffer.from(text.slice(at))]);
  });
}

/** A path id that is malformed, or well formed but unknown. */
export const badPathId = fc.oneof(
  fc.constantFrom('.hidden', '-x', 'a%20b', 'bad%21id', 'a'.repeat(129), '%00', '%2e%2e', 'caf%C3%A9', '%F0%9F%99%82', '%E0%A4%A'),
  fc
    .string({ minLength: 1, maxLength: 30 })
    .filter((s) => !/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(s) && !/^\.+$/.test(s))
    .map((s) => encodeURIComponent(s)),
  fc.stringMatching(/^[a-z][a-z0-9-]{3,20}$/).map((s) => `unknown-${s}`),
);

/** Row counts of `tables` in one statement (cheap enough to take around every request). */
export async function counts(db: Database, tables: readonly string[]): Promise<Record<string, number>> {
  const sql = `SELECT ${tables.map((t) => `(SELECT COUNT(*) FROM ${t}) AS ${t}`).join(', ')}`;
  const [row] = await db.sequelize.query<Record<string, unknown>>(sql, { type: QueryTypes.SELECT });
  return Object.fromEntries(tables.map((t) => [t, Number(row![t])]));
}

/** A digest of the rows of `table` that a bad request could change in place (an update, not an insert). */
export async function digest(db: Database, sql: string): Promise<string> {
  const rows = await db.sequelize.query(sql, { type: QueryTypes.SELECT });
  return JSON.stringify(rows);
}

export interface FuzzTarget {
  baseUrl: string;
  /** `GET` this after the run: the host must still answer 200. */
  healthUrl: string;
  db: Database;
  tables: readonly string[];
  /** SQL whose result must not change (rows a bad request could update in place). */
  unchanged?: string;
  /** Signs or authorises a request (mentor signatures, admin token). */
  decorate?: (r: FuzzRequest) => FuzzRequest;
}

export const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 1000);

/**
 * Send `runs` generated requests; each must be refused with a 4xx problem, change nothing, and leave the
 * host serving. Returns how many were sent (the caller asserts the count).
 */
export async function fuzzRoute(target: FuzzTarget, name: string, requests: fc.Arbitrary<FuzzRequest>, runs = FUZZ_RUNS): Promise<number> {
  let sent = 0;
  const statuses = new Map<number, number>();
  await fc.assert(
    fc.asyncProperty(requests, async (raw) => {
      const r = target.decorate ? target.decorate(raw) : raw;
      const before = await counts(target.db, target.tables);
      const beforeRows = target.unchanged ? await digest(target.db, target.unchanged) : '';
      const res = await fetch(`${target.baseUrl}${r.path}`, { method: r.method, headers: r.headers, body: r.body });
      const text = await res.text();
      sent += 1;
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const shown = typeof r.body === 'string' || r.body === undefined ? (r.body ?? '') : Buffer.from(r.body).toString('latin1');
      const what = `${name}: ${r.defect}: ${r.method} ${r.path} ${JSON.stringify(r.headers)} ${JSON.stringify(shown.slice(0, 300))} -> ${res.status} ${text.slice(0, 300)}`;
      expect(res.status, what).toBeGreaterThanOrEqual(400);
      expect(res.status, what).toBeLessThan(500);
      expect(res.headers.get('content-type') ?? '', what).toMatch(/^application\/problem\+json/);
      expect(await counts(target.db, target.tables), what).toEqual(before);
      if (target.unchanged) expect(await digest(target.db, target.unchanged), what).toBe(beforeRows);
      expect(({} as Record<string, unknown>).polluted, what).toBeUndefined();
    }),
    { numRuns: runs, endOnFailure: true },
  );
  const health = await fetch(target.healthUrl);
  expect(health.status).toBe(200);
  return sent;
}

/** Build a request for a JSON route from a body value (objects are serialised). */
export const jsonRequest =
  (method: string, path: string, defect: string) =>
  (body: unknown): FuzzRequest => ({
    method,
    path,
    headers: { ...JSON_CT },
    body: JSON.stringify(body),
    defect,
  });
