/**
 * The console's only way to the relay: the public management API (and the session routes), same origin,
 * with the session cookie and, on changes, the session's CSRF token. Errors arrive as problem+json and are
 * thrown as `ApiError` carrying the problem's detail and field errors.
 */

export interface FieldError {
  path: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly errors: FieldError[] = [],
  ) {
    super(detail);
  }
}

export interface Session {
  kind: 'admin' | 'portal';
  endpoint_id: string | null;
  csrf_token: string;
  expires_at: string;
}

export interface Endpoint {
  id: string;
  url: string;
  events: string[];
  description: string | null;
  enabled: boolean;
  disabled_reason: string | null;
  failing_since: string | null;
  created_at: string;
  updated_at: string;
  /** Dotted paths to conditions; null: every subscribed event. */
  filter?: Record<string, unknown> | null;
  /** Names of the endpoint's own request headers (values are never shown). */
  headers?: string[];
  /** Requests per second, or null for no limit. */
  rate_limit?: number | null;
}

export interface Delivery {
  id: number;
  event_id: string;
  event_type: string;
  deviceid: string | null;
  target: string;
  webhook_id: string | null;
  status: 'pending' | 'inflight' | 'succeeded' | 'dead';
  attempts: number;
  max_attempts: number;
  next_attempt_at: string | null;
  last_status_code: number | null;
  last_error: string | null;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
}

export interface Attempt {
  number: number;
  started_at: string;
  duration_ms: number;
  status_code: number | null;
  outcome: string;
  spent: boolean;
  error: string | null;
  response_body: string | null;
}

export interface DeliveryDetail extends Delivery {
  event: unknown;
  attempts_log: Attempt[];
}

export interface Stats {
  at: string;
  queues: Array<{ target: string; pending: number; inflight: number; dead: number }>;
  totals: { enqueued: number; succeeded: number; failed_attempts: number; dead: number };
  circuits: Array<{ key: string; state: 'closed' | 'half-open' | 'open' }>;
}

export interface EventType {
  name: string;
  description: string;
  operational: boolean;
  schema: Record<string, unknown>;
  example: unknown;
}

let csrf = '';
let onUnauthorized: (() => void) | undefined;

export function bindSession(session: Session | null, unauthorized: () => void): void {
  csrf = session?.csrf_token ?? '';
  onUnauthorized = unauthorized;
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['x-csrf-token'] = csrf;
  let res: Response;
  try {
    res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  } catch {
    throw new ApiError(0, 'The relay did not answer; check that the devices host is running');
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let data: unknown = null;
  try {
    data = JSON.parse(text);
  } catch {
    data = null;
  }
  if (!res.ok) {
    const problem = (data ?? {}) as { detail?: string; errors?: FieldError[] };
    if (res.status === 401 && path.startsWith('/api/')) onUnauthorized?.();
    throw new ApiError(res.status, problem.detail ?? `The relay answered ${res.status}`, problem.errors ?? []);
  }
  return data as T;
}

/** A query string from the set values of `params`. */
export function query(params: Record<string, string | number | undefined | null>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : '';
}
