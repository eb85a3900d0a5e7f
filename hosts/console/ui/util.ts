/** Small pieces the pages share: loading hook, formatting, status badges, notices, routing. */
import { html } from 'htm/preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiError } from './api.js';

export interface Loaded<T> {
  data?: T;
  error?: ApiError;
  loading: boolean;
  reload(): void;
}

/** Run `load` now and whenever `deps` change; keeps the last data while reloading. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: ApiError; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (err: unknown) => live && setState({ error: toApiError(err), loading: false }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

export const toApiError = (err: unknown): ApiError =>
  err instanceof ApiError ? err : new ApiError(0, String((err as Error)?.message ?? err));

export function fmtTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}

export const fmtNumber = (n: number, digits = 0) =>
  n.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits });

export function Badge({ status }: { status: string }) {
  return html`<span class=${`badge badge-${status.replace(/[^a-z-]/g, '')}`}>${status}</span>`;
}

export function Notice({ kind = 'info', children }: { kind?: 'info' | 'error' | 'success'; children: unknown }) {
  return html`<div class=${`notice notice-${kind}`} role=${kind === 'error' ? 'alert' : 'status'}>${children}</div>`;
}

/**
 * An API error as a notice; a 404 of a route this relay lacks reads as "not available". Field errors under
 * one of the `inline` paths are shown next to their field instead, and only the rest are listed here.
 */
export function ErrorNotice({ error, missing, inline = [] }: { error: ApiError | undefined; missing?: string; inline?: string[] }) {
  if (!error) return null;
  if (error.status === 404 && missing) return html`<${Notice}>${missing}<//>`;
  const under = (path: string, p: string) => path === p || path.startsWith(`${p}.`) || path.startsWith(`${p}[`);
  const rest = error.errors.filter((e) => !inline.some((p) => under(e.path, p)));
  const marked = error.errors.length - rest.length;
  return html`<${Notice} kind="error">
    <strong>${error.status ? `Error ${error.status}` : 'Error'}:</strong> ${error.detail}
    ${marked > 0 && html` <span>(${marked === 1 ? 'see the field marked above' : 'see the fields marked above'})</span>`}
    ${rest.length > 0 &&
    html`<ul class="field-errors">
      ${rest.map((e) => html`<li><code>${e.path}</code> ${e.message}</li>`)}
    </ul>`}
  <//>`;
}

/** The current hash route: path segments and query. */
export interface Route {
  path: string[];
  params: URLSearchParams;
}

export function parseHash(hash: string): Route {
  const raw = hash.replace(/^#/, '');
  const [p = '', q = ''] = raw.split('?');
  return { path: p.split('/').filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(q) };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseHash(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseHash(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

export const href = (path: string, params?: Record<string, string | undefined>) => {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params ?? {})) if (v) q.set(k, v);
  const s = q.toString();
  return `#${path}${s ? `?${s}` : ''}`;
};

export function Json({ value, label }: { value: unknown; label: string }) {
  return html`<pre class="code" tabindex="0" aria-label=${label}>${JSON.stringify(value, null, 2)}</pre>`;
}

/** `datetime-local` value (local time) to ISO, and back. */
export const localToIso = (v: string) => (v ? new Date(v).toISOString() : '');
export const isoToLocal = (iso: string | null | undefined) => {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
};
