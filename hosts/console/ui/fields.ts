/**
 * The endpoint form's richer fields: the filter editor (its paths come from the catalogue schemas of the
 * chosen event types), endpoint headers (write-only values; reads show names), the rate limit, and field
 * errors shown next to the field a 422 names.
 */
import { html } from 'htm/preact';
import type { ApiError, EventType, FieldError } from './api.js';

/** The errors of a 422 about `path` itself or anything below it (`filter.data.cpu`, `events[0]`). */
export function errorsAt(error: ApiError | undefined, path: string): FieldError[] {
  if (!error) return [];
  return error.errors.filter((e) => e.path === path || e.path.startsWith(`${path}.`) || e.path.startsWith(`${path}[`));
}

/** The field errors under `path`, next to its field; `id` lets the field point at them (`aria-describedby`). */
export function FieldErrors({ error, path, id }: { error: ApiError | undefined; path: string; id: string }) {
  const errors = errorsAt(error, path);
  if (errors.length === 0) return null;
  return html`<ul class="field-error" id=${id}>
    ${errors.map((e) => html`<li>${e.path !== path ? html`<code>${e.path}</code> ` : ''}${e.message}</li>`)}
  </ul>`;
}

const matches = (patterns: readonly string[], type: string) =>
  patterns.some((p) => p === '*' || p === type || (p.endsWith('.*') && type.startsWith(p.slice(0, -1))));

/** The catalogue types an endpoint subscribed to `events` receives (`*` leaves operational events out, as the relay does). */
export function subscribedTypes(types: readonly EventType[], events: readonly string[]): EventType[] {
  const named = events.filter((p) => p !== '*');
  return types.filter((t) => t.name !== 'webhook.test' && matches(t.operational ? named : events, t.name));
}

/** A path a filter may name, and the JSON types its value may have (empty: any). */
export interface FilterPath {
  path: string;
  types: string[];
}

type Schema = Record<string, unknown>;

function jsonTypes(s: Schema): string[] {
  if (Array.isArray(s.anyOf)) {
    const parts = (s.anyOf as Schema[]).map(jsonTypes);
    return parts.some((p) => p.length === 0) ? [] : [...new Set(parts.flat())];
  }
  const norm = (t: string) => (t === 'integer' ? 'number' : t);
  if (Array.isArray(s.type)) return [...new Set((s.type as string[]).map(norm))];
  if (typeof s.type === 'string') return [norm(s.type)];
  if (Array.isArray(s.enum)) return [...new Set((s.enum as unknown[]).map((v) => (v === null ? 'null' : typeof v)))];
  return [];
}

/** Every leaf field below `schema` as `prefix.field`, with its types. */
function leaves(schema: Schema, prefix: string, depth: number, out: Map<string, Set<string> | null>): void {
  const variants = Array.isArray(schema.anyOf) ? (schema.anyOf as Schema[]) : [schema];
  for (const v of variants) {
    const props = v.properties as Record<string, Schema> | undefined;
    if (!props) continue;
    for (const [name, sub] of Object.entries(props)) {
      const path = `${prefix}.${name}`;
      const nested = (Array.isArray(sub.anyOf) ? (sub.anyOf as Schema[]) : [sub]).some((x) => x.properties);
      if (nested && depth < 7) leaves(sub, path, depth + 1, out);
      if (nested) continue;
      const types = jsonTypes(sub);
      const had = out.get(path);
      if (had === null) continue;
      if (types.length === 0) out.set(path, null);
      else out.set(path, new Set([...(had ?? []), ...types]));
    }
  }
}

/** The paths a filter may use for an endpoint subscribed to `events`: `type`, `deviceid`, then each type's data fields. */
export function filterPaths(types: readonly EventType[], events: readonly string[]): FilterPath[] {
  const found = new Map<string, Set<string> | null>();
  for (const t of subscribedTypes(types, events)) leaves((t.schema ?? {}) as Schema, 'data', 0, found);
  return [
    { path: 'type', types: ['string'] },
    { path: 'deviceid', types: ['string', 'null'] },
    ...[...found.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([path, t]) => ({ path, types: t ? [...t] : [] })),
  ];
}

export const OPERATORS = [
  ['eq', 'equals'],
  ['ne', 'does not equal'],
  ['in', 'is one of'],
  ['nin', 'is none of'],
  ['gt', '>'],
  ['gte', '≥'],
  ['lt', '<'],
  ['lte', '≤'],
  ['prefix', 'starts with'],
  ['exists', 'exists'],
] as const;

/** One condition of the editor: a path, an operator and the value as typed. */
export interface Condition {
  path: string;
  op: string;
  value: string;
}

const show = (v: unknown) => (typeof v === 'string' ? v : JSON.stringify(v));

/** A stored filter as editor rows (a scalar is `eq`, an array `in`, an operator object one row per operator). */
export function conditionsOf(filter: unknown): Condition[] {
  if (!filter || typeof filter !== 'object') return [];
  const rows: Condition[] = [];
  for (const [path, cond] of Object.entries(filter as Record<string, unknown>)) {
    if (Array.isArray(cond)) rows.push({ path, op: 'in', value: cond.map(show).join(', ') });
    else if (cond === null || typeof cond !== 'object') rows.push({ path, op: 'eq', value: show(cond) });
    else
      for (const [op, v] of Object.entries(cond as Record<string, unknown>))
        rows.push({ path, op, value: Array.isArray(v) ? v.map(show).join(', ') : show(v) });
  }
  return rows;
}

/** The typed text as the JSON value the path holds: a number for a number field, true/false, null; else the text. */
function valueFor(text: string, types: string[]): unknown {
  const t = text.trim();
  const anyType = types.length === 0;
  if ((anyType || types.includes('number')) && t !== '' && Number.isFinite(Number(t))) return Number(t);
  if ((anyType || types.includes('boolean')) && (t === 'true' || t === 'false')) return t === 'true';
  if ((anyType || types.includes('null')) && t === 'null') return null;
  return t;
}

/** The filter the rows describe (rows of one path merge into one operator object), or undefined for none. */
export function filterOf(rows: readonly Condition[], paths: readonly FilterPath[]): Record<string, Record<string, unknown>> | undefined {
  const out: Record<string, Record<string, unknown>> = {};
  for (const r of rows) {
    if (!r.path) continue;
    const types = paths.find((p) => p.path === r.path)?.types ?? [];
    const value =
      r.op === 'exists'
        ? r.value !== 'false'
        : r.op === 'in' || r.op === 'nin'
          ? r.value
              .split(',')
              .filter((s) => s.trim() !== '')
              .map((s) => valueFor(s, types))
          : r.op === 'prefix'
            ? r.value
            : valueFor(r.value, types);
    (out[r.path] ??= {})[r.op] = value;
  }
  return Object.keys(out).length ? out : undefined;
}

/** The filter editor: one row per condition, every condition must match. */
export function FilterEditor({
  id,
  rows,
  onChange,
  paths,
  error,
}: {
  id: string;
  rows: Condition[];
  onChange(rows: Condition[]): void;
  paths: FilterPath[];
  error: ApiError | undefined;
}) {
  const set = (i: number, patch: Partial<Condition>) => onChange(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  const errId = `${id}-errors`;
  return html`<fieldset class="filter-editor" aria-describedby=${`${id}-help`}>
    <legend>Filter <span class="muted">(optional)</span></legend>
    <p class="help" id=${`${id}-help`}>
      Deliver only events matching every condition. Fields come from the catalogue schemas of the chosen event types; lists are
      comma-separated.
    </p>
    ${rows.length === 0 && html`<p class="muted small">No conditions: every subscribed event is delivered.</p>`}
    ${rows.map((r, i) => {
      const n = i + 1;
      const known = paths.some((p) => p.path === r.path);
      const rowErrors = errorsAt(error, `filter.${r.path}`).length > 0;
      return html`<div class=${rowErrors ? 'filter-row invalid' : 'filter-row'}>
        <select
          id=${`${id}-path-${i}`}
          aria-label=${`Field of condition ${n}`}
          aria-invalid=${rowErrors ? 'true' : undefined}
          value=${r.path}
          onChange=${(e: Event) => set(i, { path: (e.target as HTMLSelectElement).value })}
        >
          ${!known && html`<option value=${r.path}>${r.path}</option>`}
          ${paths.map((p) => html`<option value=${p.path}>${p.path}</option>`)}
        </select>
        <select
          aria-label=${`Operator of condition ${n}`}
          value=${r.op}
          onChange=${(e: Event) => set(i, { op: (e.target as HTMLSelectElement).value })}
        >
          ${OPERATORS.map(([op, label]) => html`<option value=${op}>${label}</option>`)}
        </select>
        ${r.op === 'exists'
          ? html`<select
              aria-label=${`Value of condition ${n}`}
              value=${r.value === 'false' ? 'false' : 'true'}
              onChange=${(e: Event) => set(i, { value: (e.target as HTMLSelectElement).value })}
            >
              <option value="true">yes</option>
              <option value="false">no</option>
            </select>`
          : html`<input
              aria-label=${`Value of condition ${n}`}
              aria-invalid=${rowErrors ? 'true' : undefined}
              aria-describedby=${rowErrors ? errId : undefined}
              value=${r.value}
              placeholder=${r.op === 'in' || r.op === 'nin' ? 'a, b, c' : 'value'}
              onInput=${(e: Event) => set(i, { value: (e.target as HTMLInputElement).value })}
            />`}
        <button
          type="button"
          class="ghost remove"
          aria-label=${`Remove condition ${n}`}
          onClick=${() => onChange(rows.filter((_, j) => j !== i))}
        >
          ×
        </button>
      </div>`;
    })}
    <${FieldErrors} error=${error} path="filter" id=${errId} />
    <button
      type="button"
      class="small-button"
      onClick=${() => onChange([...rows, { path: paths[2]?.path ?? 'deviceid', op: 'eq', value: '' }])}
    >
      Add condition
    </button>
  </fieldset>`;
}

/** One endpoint header as typed: the value is write-only (the relay never shows it again). */
export interface HeaderRow {
  name: string;
  value: string;
}

export function headersOf(rows: readonly HeaderRow[]): Record<string, string> | undefined {
  const named = rows.filter((r) => r.name.trim() !== '');
  return named.length ? Object.fromEntries(named.map((r) => [r.name.trim(), r.value])) : undefined;
}

/**
 * Endpoint headers: names and write-only values. `current` lists the names the endpoint sends now; entering
 * any header replaces them all, `remove` drops them.
 */
export function HeadersEditor({
  id,
  rows,
  onChange,
  current,
  remove,
  onRemove,
  error,
}: {
  id: string;
  rows: HeaderRow[];
  onChange(rows: HeaderRow[]): void;
  current?: string[];
  remove?: boolean;
  onRemove?(v: boolean): void;
  error: ApiError | undefined;
}) {
  const set = (i: number, patch: Partial<HeaderRow>) => onChange(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  const has = (current?.length ?? 0) > 0;
  return html`<fieldset class="headers-editor">
    <legend>Headers <span class="muted">(optional)</span></legend>
    <p class="help">
      Sent with every delivery, e.g. <code>Authorization</code> or <code>X-Api-Key</code>. Values are stored encrypted and never shown
      again. ${has ? ' Entering headers replaces all current ones.' : ''}
    </p>
    ${has &&
    html`<p class="small">
        Sent now: ${current!.map((h) => html`<code class="chip">${h}</code>`)}
        <span class="muted">(values hidden)</span>
      </p>
      <label class="check"
        ><input type="checkbox" checked=${remove} onChange=${(e: Event) => onRemove?.((e.target as HTMLInputElement).checked)} /> Remove all
        headers</label
      >`}
    ${rows.map(
      (r, i) =>
        html`<div class="header-row">
          <input
            aria-label=${`Header name ${i + 1}`}
            placeholder="X-Api-Key"
            autocomplete="off"
            spellcheck="false"
            value=${r.name}
            onInput=${(e: Event) => set(i, { name: (e.target as HTMLInputElement).value })}
          />
          <input
            aria-label=${`Header value ${i + 1}`}
            type="password"
            autocomplete="new-password"
            placeholder="value"
            value=${r.value}
            onInput=${(e: Event) => set(i, { value: (e.target as HTMLInputElement).value })}
          />
          <button
            type="button"
            class="ghost remove"
            aria-label=${`Remove header ${i + 1}`}
            onClick=${() => onChange(rows.filter((_, j) => j !== i))}
          >
            ×
          </button>
        </div>`,
    )}
    <${FieldErrors} error=${error} path="headers" id=${`${id}-errors`} />
    <button type="button" class="small-button" disabled=${remove} onClick=${() => onChange([...rows, { name: '', value: '' }])}>
      Add header
    </button>
  </fieldset>`;
}

/** Requests per second; empty means no limit. */
export function RateLimitField({
  id,
  value,
  onInput,
  error,
}: {
  id: string;
  value: string;
  onInput(v: string): void;
  error: ApiError | undefined;
}) {
  const bad = errorsAt(error, 'rate_limit').length > 0;
  return html`<label for=${id}>Rate limit <span class="muted">(requests per second, optional)</span></label>
    <input
      id=${id}
      type="number"
      min="1"
      step="1"
      inputmode="numeric"
      placeholder="no limit"
      value=${value}
      aria-invalid=${bad ? 'true' : undefined}
      aria-describedby=${bad ? `${id}-errors` : `${id}-help`}
      onInput=${(e: Event) => onInput((e.target as HTMLInputElement).value)}
    />
    <p class="help" id=${`${id}-help`}>Deliveries beyond it wait without spending attempts.</p>
    <${FieldErrors} error=${error} path="rate_limit" id=${`${id}-errors`} />`;
}

/** The body's `rate_limit` from the field: a number, or `null` to remove (`undefined`: leave out). */
export function rateLimitOf(text: string, had: boolean): number | null | undefined {
  if (text.trim() === '') return had ? null : undefined;
  return Number(text);
}
