/**
 * Endpoint filters: `{ "<path>": <condition>, ... }`, every key must match. A path is `type`, `deviceid` or
 * `data.<field>[.<field>...]`; a condition is a scalar (equal), an array (any of), or an object of operators
 * (`eq`, `ne`, `in`, `nin`, `gt`, `gte`, `lt`, `lte`, `exists`, `prefix`).
 *
 * Filters run at publish, inside the ingest transaction, once per event and filtered endpoint, so they are
 * checked once at registration (against the catalogue schemas of the subscribed types) and compiled into
 * closures that do no parsing, allocation or schema work per event: a path is a fixed list of property
 * reads, `in` is a `Set`. `bench/scenarios/filters.ts` measures the cost.
 *
 * A missing field (or one of an event type without it) matches only `ne`, `nin` and `exists: false`;
 * `exists: true` means present and not null.
 */
import type { RelayEvent } from '../../lib/events.js';
import type { EventCatalogue, JsonSchema } from './catalogue.js';
import { jsonTypes, subscribedTypes } from './catalogue.js';

/** A filter value compared for equality. */
export type Scalar = string | number | boolean | null;
/** One condition: a scalar (equal), an array (any of), or an object of operators (`{gte: 90}`). */
export type FilterCondition = Scalar | Scalar[] | Partial<Record<FilterOperator, unknown>>;
/** An endpoint's filter: dotted paths into the event (`deviceid`, `type`, `data.<field>`) to conditions, all of which must match. */
export type EventFilter = Record<string, FilterCondition>;

/** The operators a condition object may use. */
export const FILTER_OPERATORS = ['eq', 'ne', 'in', 'nin', 'gt', 'gte', 'lt', 'lte', 'exists', 'prefix'] as const;
/** One of {@link FILTER_OPERATORS}. */
export type FilterOperator = (typeof FILTER_OPERATORS)[number];

/** Why a filter is refused: the field (`filter.data.cpu_usage.gte`) and what is wrong with it. */
export interface FilterIssue {
  /** `filter.<key>` or `filter.<key>.<operator>`. */
  path: string;
  message: string;
}

const MAX_KEYS = 32;
const MAX_LIST = 100;
const MAX_STRING = 1024;
const DATA_PATH = /^data(\.[A-Za-z_][A-Za-z0-9_]{0,63}){1,8}$/;

/** JSON types a path may hold for the subscribed types; `null` when no subscribed type has it. Empty: any. */
function pathTypes(key: string, types: readonly string[], catalogue: EventCatalogue): string[] | null {
  if (key === 'type') return ['string'];
  if (key === 'deviceid') return ['string', 'null'];
  const segments = key.split('.').slice(1);
  let found = false;
  const union = new Set<string>();
  let any = false;
  for (const type of types) {
    const entry = catalogue.get(type);
    if (!entry) continue;
    const at = resolve(entry.schema, segments);
    if (at === undefined) continue;
    found = true;
    const t = at === 'any' ? [] : jsonTypes(at);
    if (t.length === 0) any = true;
    for (const x of t) union.add(x);
  }
  if (!found) return null;
  return any ? [] : [...union];
}

/** The schema at `segments` below `schema`, `'any'` below an open object, undefined when absent. */
function resolve(schema: JsonSchema, segments: string[]): JsonSchema | 'any' | undefined {
  let s: JsonSchema = schema;
  for (const seg of segments) {
    const variants = Array.isArray(s.anyOf) ? (s.anyOf as JsonSchema[]) : [s];
    let next: JsonSchema | 'any' | undefined;
    for (const v of variants) {
      const props = v.properties as Record<string, JsonSchema> | undefined;
      if (props && Object.hasOwn(props, seg)) next = props[seg];
      else if (!props && (v.type === 'object' || v.type === undefined) && v.additionalProperties !== false) {
        next = typeof v.additionalProperties === 'object' ? (v.additionalProperties as JsonSchema) : 'any';
      }
      if (next !== undefined) break;
    }
    if (next === undefined || next === 'any') return next;
    s = next;
  }
  return s;
}

const typeOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);
const isScalar = (v: unknown): v is Scalar => v === null || ['string', 'number', 'boolean'].includes(typeof v);
const describeTypes = (t: string[]) => (t.length === 0 ? 'any value' : t.join(' or '));

/**
 * What is wrong with `filter` for an endpoint subscribed to `events`: an empty list when it is usable.
 * Checks the shape, the operators, that some subscribed type has each path, and each value's type.
 */
export function filterProblems(filter: unknown, events: readonly string[], catalogue: EventCatalogue): FilterIssue[] {
  if (filter === null || filter === undefined) return [];
  if (typeof filter !== 'object' || Array.isArray(filter))
    return [{ path: 'filter', message: 'must be an object of "<path>": <condition>, or null' }];
  const keys = Object.keys(filter);
  if (keys.length > MAX_KEYS) return [{ path: 'filter', message: `may have at most ${MAX_KEYS} paths` }];
  const subscribed = subscribedTypes(catalogue, events);
  const issues: FilterIssue[] = [];
  for (const key of keys) {
    const at = `filter.${key}`;
    if (key !== 'type' && key !== 'deviceid' && !DATA_PATH.test(key)) {
      issues.push({ path: at, message: 'unknown path: use type, deviceid or data.<field> (fields separated by ".")' });
      continue;
    }
    const allowed = pathTypes(key, subscribed, catalogue);
    if (allowed === null) {
      issues.push({ path: at, message: `no subscribed event type (${subscribed.join(', ') || 'none'}) has ${key}` });
      continue;
    }
    issues.push(...conditionProblems((filter as Record<string, unknown>)[key], allowed, at, key));
  }
  return issues;
}

function conditionProblems(cond: unknown, allowed: string[], at: string, key: string): FilterIssue[] {
  const fits = (v: unknown) => allowed.length === 0 || allowed.includes(typeOf(v));
  const scalar = (v: unknown, where: string): FilterIssue[] => {
    if (!isScalar(v)) return [{ path: where, message: 'must be a string, number, boolean or null' }];
    if (typeof v === 'string' && v.length > MAX_STRING) return [{ path: where, message: `must be at most ${MAX_STRING} characters` }];
    if (!fits(v)) return [{ path: where, message: `${key} is ${describeTypes(allowed)}; got ${typeOf(v)}` }];
    return [];
  };
  const list = (v: unknown, where: string): FilterIssue[] => {
    if (!Array.isArray(v) || v.length === 0 || v.length > MAX_LIST)
      return [{ path: where, message: `must be an array of 1 to ${MAX_LIST} values` }];
    return v.flatMap((x, i) => scalar(x, `${where}[${i}]`));
  };
  if (Array.isArray(cond)) return list(cond, at);
  if (cond === null || typeof cond !== 'object') return scalar(cond, at);
  const ops = Object.entries(cond as Record<string, unknown>);
  if (ops.length === 0) return [{ path: at, message: `must have at least one operator (${FILTER_OPERATORS.join(', ')})` }];
  const issues: FilterIssue[] = [];
  for (const [op, value] of ops) {
    const where = `${at}.${op}`;
    switch (op) {
      case 'eq':
      case 'ne':
        issues.push(...scalar(value, where));
        break;
      case 'in':
      case 'nin':
        issues.push(...list(value, where));
        break;
      case 'gt':
      case 'gte':
      case 'lt':
      case 'lte':
        if (typeof value !== 'number' && typeof value !== 'string') issues.push({ path: where, message: 'must be a number or a string' });
        else issues.push(...scalar(value, where));
        break;
      case 'exists':
        if (typeof value !== 'boolean') issues.push({ path: where, message: 'must be true or false' });
        break;
      case 'prefix':
        if (typeof value !== 'string' || value.length === 0) issues.push({ path: where, message: 'must be a non-empty string' });
        else issues.push(...scalar(value, where));
        break;
      default:
        issues.push({ path: where, message: `unknown operator ${JSON.stringify(op)}; use one of ${FILTER_OPERATORS.join(', ')}` });
    }
  }
  return issues;
}

/** A filter refused at registration; the management API answers 422 with `issues`. */
export class WebhookFilterError extends Error {
  constructor(readonly issues: FilterIssue[]) {
    super(`the webhook filter is not usable: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`);
    this.name = 'WebhookFilterError';
  }
}

/** A matcher for a filter that `filterProblems` accepted. */
export type EventMatcher = (event: RelayEvent) => boolean;

/**
 * Many endpoints' filters, evaluated together: `match(event)` returns the keys whose filter takes the event.
 * Each distinct path is read once per event whatever the number of endpoints naming it, and a condition is
 * data (an op code and its operand) tested in one switch, not a closure per endpoint: with 100 filtered
 * endpoints the evaluation stays monomorphic and allocates only the answer.
 */
export interface FilterSet<K> {
  match(event: RelayEvent): K[];
  readonly size: number;
}

const OP = { eq: 0, ne: 1, in: 2, nin: 3, gt: 4, gte: 5, lt: 6, lte: 7, exists: 8, absent: 9, prefix: 10 } as const;

interface Test {
  slot: number;
  op: number;
  x: unknown;
  set: Set<unknown> | null;
}

function tests(filter: EventFilter, slotOf: (path: string) => number): Test[] {
  const out: Test[] = [];
  for (const [key, cond] of Object.entries(filter)) {
    const slot = slotOf(key);
    if (Array.isArray(cond)) out.push({ slot, op: OP.in, x: null, set: new Set(cond) });
    else if (cond === null || typeof cond !== 'object') out.push({ slot, op: OP.eq, x: cond, set: null });
    else
      for (const [op, x] of Object.entries(cond)) {
        if (op === 'in' || op === 'nin') out.push({ slot, op: OP[op], x: null, set: new Set(x as unknown[]) });
        else if (op === 'exists') out.push({ slot, op: x ? OP.exists : OP.absent, x: null, set: null });
        else out.push({ slot, op: OP[op as keyof typeof OP], x, set: null });
      }
  }
  return out;
}

function passes(t: Test, v: unknown): boolean {
  switch (t.op) {
    case OP.eq:
      return v === t.x;
    case OP.ne:
      return v !== t.x;
    case OP.in:
      return t.set!.has(v);
    case OP.nin:
      return !t.set!.has(v);
    case OP.gt:
      return typeof v === typeof t.x && (v as number) > (t.x as number);
    case OP.gte:
      return typeof v === typeof t.x && (v as number) >= (t.x as number);
    case OP.lt:
      return typeof v === typeof t.x && (v as number) < (t.x as number);
    case OP.lte:
      return typeof v === typeof t.x && (v as number) <= (t.x as number);
    case OP.exists:
      return v !== undefined && v !== null;
    case OP.absent:
      return v === undefined || v === null;
    case OP.prefix:
      return typeof v === 'string' && v.startsWith(t.x as string);
    default:
      return false;
  }
}

export function compileFilterSet<K>(items: ReadonlyArray<{ key: K; filter: EventFilter }>): FilterSet<K> {
  const paths: string[] = [];
  const slotOf = (path: string) => {
    const i = paths.indexOf(path);
    return i >= 0 ? i : paths.push(path) - 1;
  };
  const compiled = items.map((it) => ({ key: it.key, tests: tests(it.filter, slotOf) }));
  const readers = paths.map(reader);
  const values: unknown[] = new Array(readers.length);
  return {
    size: compiled.length,
    match(event) {
      for (let i = 0; i < readers.length; i++) values[i] = readers[i]!(event);
      const out: K[] = [];
      for (const c of compiled) {
        let ok = true;
        for (const t of c.tests)
          if (!passes(t, values[t.slot])) {
            ok = false;
            break;
          }
        if (ok) out.push(c.key);
      }
      return out;
    },
  };
}

/** Compile one accepted filter to a matcher (the publish path evaluates many at once with `compileFilterSet`). */
export function compileFilter(filter: EventFilter): EventMatcher {
  const set = compileFilterSet([{ key: true, filter }]);
  return (event) => set.match(event).length === 1;
}

function reader(key: string): (e: RelayEvent) => unknown {
  if (key === 'type') return (e) => e.type;
  if (key === 'deviceid') return (e) => e.deviceid;
  const segments = key.split('.').slice(1);
  if (segments.length === 1) {
    const [k] = segments as [string];
    return (e) => (Object.hasOwn(e.data, k) ? (e.data as Record<string, unknown>)[k] : undefined);
  }
  return (e) => {
    let v: unknown = e.data;
    for (const s of segments) {
      if (v === null || typeof v !== 'object' || !Object.hasOwn(v, s)) return undefined;
      v = (v as Record<string, unknown>)[s];
    }
    return v;
  };
}
