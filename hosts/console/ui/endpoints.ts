/** Endpoints: the list, registration, and one endpoint's page (edit, secret, test, portal link, replay). */
import { html } from 'htm/preact';
import { useState } from 'preact/hooks';
import { api, ApiError, query } from './api.js';
import type { Delivery, Endpoint, EventType, Session } from './api.js';
import {
  FieldErrors,
  FilterEditor,
  HeadersEditor,
  OPERATORS,
  RateLimitField,
  conditionsOf,
  errorsAt,
  filterOf,
  filterPaths,
  headersOf,
  rateLimitOf,
} from './fields.js';
import type { Condition, HeaderRow } from './fields.js';
import { Badge, ErrorNotice, Notice, fmtTime, href, isoToLocal, localToIso, toApiError, useLoad } from './util.js';

const catalogue = () =>
  api<{ data: EventType[] }>('GET', '/api/v1/event-types').then(
    (r) => r.data,
    (err: unknown) => {
      // A relay without the catalogue route: event types are typed in instead.
      if (err instanceof ApiError && err.status === 404) return null;
      throw err;
    },
  );

/** Event type picker: checkboxes from the catalogue, or a text field when this relay has none. */
function EventsField({
  value,
  onChange,
  types,
  id,
}: {
  value: string[];
  onChange(v: string[]): void;
  types: EventType[] | null | undefined;
  id: string;
}) {
  if (!types)
    return html`<label for=${id}>Event types</label>
      <input
        id=${id}
        required
        value=${value.join(', ')}
        aria-describedby=${`${id}-help`}
        onInput=${(e: Event) =>
          onChange(
            (e.target as HTMLInputElement).value
              .split(',')
              .map((s) => s.trim())
              .filter(Boolean),
          )}
      />
      <p class="help" id=${`${id}-help`}>
        Comma-separated: exact types (<code>metric.submitted</code>), <code>*</code>, or <code>prefix.*</code>.
      </p>`;
  const all = value.includes('*');
  const toggle = (name: string, on: boolean) => onChange(on ? [...value.filter((v) => v !== name), name] : value.filter((v) => v !== name));
  // `*` covers every device event but not the operational ones, which are subscribed to by name or pattern.
  const box = (t: EventType) => {
    const covered = all && !t.operational;
    return html`<label class="check" title=${t.description}>
      <input
        type="checkbox"
        name="events"
        value=${t.name}
        disabled=${covered}
        checked=${covered || value.includes(t.name)}
        onChange=${(e: Event) => toggle(t.name, (e.target as HTMLInputElement).checked)}
      />
      <code>${t.name}</code>${t.operational ? html` <span class="badge badge-operational">operational</span>` : ''}
    </label>`;
  };
  return html`<fieldset class="events">
    <legend>Event types</legend>
    <label class="check"
      ><input type="checkbox" checked=${all} onChange=${(e: Event) => toggle('*', (e.target as HTMLInputElement).checked)} /> Every device
      event (<code>*</code>)</label
    >
    ${types.filter((t) => !t.operational).map((t) => box(t))}
    ${types.some((t) => t.operational) &&
    html`<p class="events-group">
      Operational events <span class="muted">(the relay's own; <code>*</code> leaves them out)</span>
    </p>`}
    ${types.filter((t) => t.operational).map((t) => box(t))}
  </fieldset>`;
}

function CreateEndpoint({
  types,
  onCreated,
}: {
  types: EventType[] | null | undefined;
  onCreated(e: Endpoint & { secret: string }): void;
}) {
  const [url, setUrl] = useState('');
  const [events, setEvents] = useState<string[]>(['*']);
  const [description, setDescription] = useState('');
  const [conditions, setConditions] = useState<Condition[]>([]);
  const [headers, setHeaders] = useState<HeaderRow[]>([]);
  const [rateLimit, setRateLimit] = useState('');
  const [error, setError] = useState<ApiError>();
  const [busy, setBusy] = useState(false);
  const paths = filterPaths(types ?? [], events);
  const submit = async (e: Event) => {
    e.preventDefault();
    if (events.length === 0)
      return setError(new ApiError(0, 'Choose at least one event type', [{ path: 'events', message: 'choose at least one' }]));
    setBusy(true);
    setError(undefined);
    try {
      const filter = filterOf(conditions, paths);
      const hdrs = headersOf(headers);
      const rate = rateLimitOf(rateLimit, false);
      const body: Record<string, unknown> = {
        url,
        events,
        ...(description ? { description } : {}),
        ...(filter !== undefined ? { filter } : {}),
        ...(hdrs !== undefined ? { headers: hdrs } : {}),
        ...(rate !== undefined ? { rate_limit: rate } : {}),
      };
      onCreated(await api<Endpoint & { secret: string }>('POST', '/api/v1/webhooks', body));
      setUrl('');
      setDescription('');
      setConditions([]);
      setHeaders([]);
      setRateLimit('');
    } catch (err) {
      setError(toApiError(err));
    } finally {
      setBusy(false);
    }
  };
  return html`<form class="card form" onSubmit=${submit} aria-labelledby="create-title">
    <h2 id="create-title">Register an endpoint</h2>
    <label for="new-url">URL</label>
    <input
      id="new-url"
      type="url"
      required
      placeholder="https://example.com/webhooks"
      value=${url}
      aria-invalid=${errorsAt(error, 'url').length ? 'true' : undefined}
      onInput=${(e: Event) => setUrl((e.target as HTMLInputElement).value)}
    />
    <${FieldErrors} error=${error} path="url" id="new-url-errors" />
    <${EventsField} id="new-events" value=${events} onChange=${setEvents} types=${types} />
    <${FieldErrors} error=${error} path="events" id="new-events-errors" />
    <label for="new-description">Description <span class="muted">(optional)</span></label>
    <input id="new-description" value=${description} onInput=${(e: Event) => setDescription((e.target as HTMLInputElement).value)} />
    <${FieldErrors} error=${error} path="description" id="new-description-errors" />
    <${FilterEditor} id="new-filter" rows=${conditions} onChange=${setConditions} paths=${paths} error=${error} />
    <${HeadersEditor} id="new-headers" rows=${headers} onChange=${setHeaders} error=${error} />
    <${RateLimitField} id="new-rate" value=${rateLimit} onInput=${setRateLimit} error=${error} />
    <${ErrorNotice} error=${error} inline=${INLINE} />
    <button type="submit" class="primary" disabled=${busy}>${busy ? 'Registering…' : 'Register endpoint'}</button>
  </form>`;
}

/** The fields the endpoint forms show their own errors under. */
const INLINE = ['url', 'events', 'description', 'filter', 'headers', 'rate_limit'];

export function Endpoints() {
  const list = useLoad(() => api<{ data: Endpoint[] }>('GET', '/api/v1/webhooks'), []);
  const types = useLoad(catalogue, []);
  const [created, setCreated] = useState<(Endpoint & { secret: string }) | undefined>();
  return html`<div class="page-head">
      <h1>Endpoints</h1>
      <p class="muted">Webhook subscribers and what they receive.</p>
    </div>
    ${created &&
    html`<${Notice} kind="success">
      Registered <a href=${`#/endpoints/${created.id}`}><code>${created.id}</code></a
      >. Its signing secret is shown once here: <code class="secret">${created.secret}</code>
    <//>`}
    <div class="two-col wide-left">
      <section class="card" aria-labelledby="list-title">
        <h2 id="list-title">Registered endpoints</h2>
        <${ErrorNotice} error=${list.error} />
        ${list.data && list.data.data.length === 0 && html`<p class="muted">No endpoints yet: register the first one.</p>`}
        <div class="table-wrap">
          <table class="endpoints">
            <thead>
              <tr>
                <th scope="col">Endpoint</th>
                <th scope="col">Events</th>
                <th scope="col">State</th>
              </tr>
            </thead>
            <tbody>
              ${list.data?.data.map(
                (e) =>
                  html`<tr>
                    <td>
                      <a href=${`#/endpoints/${e.id}`} class="url">${e.url}</a>
                      <div class="muted small"><code>${e.id}</code>${e.description ? ` · ${e.description}` : ''}</div>
                    </td>
                    <td>${e.events.map((t) => html`<code class="chip">${t}</code>`)}</td>
                    <td>
                      ${e.enabled
                        ? html`<${Badge} status=${e.failing_since ? 'failing' : 'enabled'} />`
                        : html`<${Badge} status="disabled" />`}
                    </td>
                  </tr>`,
              )}
            </tbody>
          </table>
        </div>
      </section>
      <${CreateEndpoint} types=${types.data} onCreated=${(e: Endpoint & { secret: string }) => (setCreated(e), list.reload())} />
    </div>`;
}

/** Success rate over the endpoint's latest deliveries that have an outcome. */
function SuccessRate({ id }: { id: string }) {
  const recent = useLoad(() => api<{ data: Delivery[] }>('GET', `/api/v1/deliveries${query({ webhook_id: id, limit: 100 })}`), [id]);
  const rows = recent.data?.data ?? [];
  const done = rows.filter((d) => d.status === 'succeeded' || d.status === 'dead');
  const ok = done.filter((d) => d.status === 'succeeded').length;
  const retrying = rows.filter((d) => d.status === 'pending' && d.attempts > 0).length;
  const pct = done.length ? Math.round((ok / done.length) * 1000) / 10 : undefined;
  return html`<div class="kpi">
    <span class="kpi-label">Recent success rate</span>
    <span class="kpi-value">${pct === undefined ? '—' : `${pct}%`}</span>
    <span class="kpi-unit"
      >${done.length ? `${ok} of ${done.length} finished deliveries` : 'no finished deliveries yet'}${retrying
        ? ` · ${retrying} retrying`
        : ''}</span
    >
  </div>`;
}

export function EndpointPage({ id, session }: { id: string; session: Session }) {
  const admin = session.kind === 'admin';
  const ep = useLoad(() => api<Endpoint>('GET', `/api/v1/webhooks/${encodeURIComponent(id)}`), [id]);
  const types = useLoad(catalogue, []);
  const [message, setMessage] = useState<{ kind: 'success' | 'info'; text: unknown }>();
  const [error, setError] = useState<ApiError>();
  const act = async (fn: () => Promise<unknown>) => {
    setError(undefined);
    setMessage(undefined);
    try {
      await fn();
    } catch (err) {
      setError(toApiError(err));
    }
  };
  if (ep.error)
    return html`<h1>Endpoint</h1>
      <${ErrorNotice} error=${ep.error} />`;
  const e = ep.data;
  if (!e) return html`<p role="status">Loading…</p>`;
  return html`<div class="page-head">
      <p class="crumbs">${admin ? html`<a href="#/endpoints">Endpoints</a> /` : 'Your endpoint'}</p>
      <h1 class="url">${e.url}</h1>
      <p class="muted">
        <code>${e.id}</code> ·
        ${e.enabled ? html`<${Badge} status=${e.failing_since ? 'failing' : 'enabled'} />` : html`<${Badge} status="disabled" />`}
        ${e.disabled_reason ? ` · ${e.disabled_reason}` : ''}${e.failing_since ? ` · failing since ${fmtTime(e.failing_since)}` : ''}
      </p>
    </div>
    <dl class="facts card endpoint-facts">
      <dt>Event types</dt>
      <dd>${e.events.map((t) => html`<code class="chip">${t}</code>`)}</dd>
      ${e.description
        ? html`<dt>Description</dt>
            <dd>${e.description}</dd>`
        : ''}
      <dt>Filter</dt>
      <dd class="endpoint-filter">
        ${e.filter
          ? html`<ul class="conditions">
                ${conditionsOf(e.filter).map(
                  (c) =>
                    html`<li>
                      <code>${c.path}</code> ${c.op === 'exists'
                        ? c.value === 'false'
                          ? 'is absent'
                          : 'exists'
                        : html`${OPERATORS.find(([op]) => op === c.op)?.[1] ?? c.op} <code class="chip">${c.value}</code>`}
                    </li>`,
                )}
              </ul>
              <code class="filter-json small muted">${JSON.stringify(e.filter)}</code>`
          : html`<span class="muted">none: every subscribed event</span>`}
      </dd>
      <dt>Headers</dt>
      <dd class="endpoint-headers">
        ${e.headers?.length
          ? html`${e.headers.map((h) => html`<code class="chip">${h}</code>`)} <span class="muted small">(values are not shown)</span>`
          : html`<span class="muted">none</span>`}
      </dd>
      <dt>Rate limit</dt>
      <dd class="endpoint-rate">${e.rate_limit ? `${e.rate_limit} requests per second` : html`<span class="muted">none</span>`}</dd>
    </dl>
    ${message && html`<${Notice} kind=${message.kind}>${message.text}<//>`}
    <${ErrorNotice} error=${error} />
    <section class="kpis">
      <${SuccessRate} id=${e.id} />
      <a class="kpi" href=${href('/deliveries', { webhook_id: e.id })}
        ><span class="kpi-label">Delivery log</span><span class="kpi-value">→</span
        ><span class="kpi-unit">every delivery to this endpoint</span></a
      >
    </section>
    <div class="actions card">
      <h2>Actions</h2>
      <div class="button-row">
        <button
          type="button"
          onClick=${() =>
            act(async () => {
              const r = await api<{ event_id: string }>('POST', `/api/v1/webhooks/${e.id}/test`);
              setMessage({
                kind: 'success',
                text: html`Test event <code>${r.event_id}</code> queued.${' '}<a
                    href=${href('/deliveries', { webhook_id: e.id, event_type: 'webhook.test' })}
                    >See its delivery</a
                  >.`,
              });
            })}
        >
          Send test event
        </button>
        <button
          type="button"
          onClick=${() =>
            act(async () => {
              if (
                !confirm(
                  'Rotate the signing secret? Each previous secret keeps signing for 24 hours; at most two previous secrets are kept.',
                )
              )
                return;
              const r = await api<{ secret: string; previous_secrets_expire_at?: string[]; previous_secret_expires_at: string | null }>(
                'POST',
                `/api/v1/webhooks/${e.id}/rotate-secret`,
              );
              // Newest first; a relay before 3-secret rotation sends only the newest previous secret's expiry.
              const expiries = r.previous_secrets_expire_at ?? (r.previous_secret_expires_at ? [r.previous_secret_expires_at] : []);
              const previous =
                expiries.length === 0
                  ? ''
                  : expiries.length === 1
                    ? ` The previous secret still signs until ${fmtTime(expiries[0])}.`
                    : ` The previous secrets still sign until ${expiries.map((x) => fmtTime(x)).join(' and ')}.`;
              setMessage({
                kind: 'success',
                text: html`New secret: <code class="secret">${r.secret}</code>.${previous}`,
              });
            })}
        >
          Rotate secret
        </button>
        ${admin &&
        html`<button
            type="button"
            onClick=${() =>
              act(async () => {
                const r = await api<{ secret: string }>('GET', `/api/v1/webhooks/${e.id}/secret`);
                setMessage({ kind: 'info', text: html`Signing secret: <code class="secret">${r.secret}</code>` });
              })}
          >
            Reveal secret
          </button>
          <button
            type="button"
            onClick=${() =>
              act(async () => {
                await api('PATCH', `/api/v1/webhooks/${e.id}`, { enabled: !e.enabled });
                ep.reload();
                setMessage({ kind: 'success', text: e.enabled ? 'Endpoint disabled.' : 'Endpoint enabled.' });
              })}
          >
            ${e.enabled ? 'Disable' : 'Enable'}
          </button>
          <button
            type="button"
            onClick=${() =>
              act(async () => {
                const r = await api<{ url: string; expires_at: string }>('POST', `/api/v1/webhooks/${e.id}/portal-link`, {
                  ttl_seconds: 3600,
                });
                setMessage({
                  kind: 'info',
                  text: html`Portal link for this endpoint, valid until ${fmtTime(r.expires_at)}:
                    <input
                      class="copy"
                      readonly
                      aria-label="Portal link"
                      value=${r.url}
                      onFocus=${(ev: Event) => (ev.target as HTMLInputElement).select()}
                    />`,
                });
              })}
          >
            Create portal link
          </button>`}
      </div>
    </div>
    <div class="two-col">
      <${EditEndpoint}
        key=${e.id}
        endpoint=${e}
        admin=${admin}
        types=${types.data}
        onSaved=${() => (ep.reload(), setMessage({ kind: 'success', text: 'Saved.' }))}
      />
      ${admin && html`<${Replay} key=${e.id} id=${e.id} />`}
    </div>`;
}

function EditEndpoint({
  endpoint,
  admin,
  types,
  onSaved,
}: {
  endpoint: Endpoint;
  admin: boolean;
  types: EventType[] | null | undefined;
  onSaved(): void;
}) {
  const [url, setUrl] = useState(endpoint.url);
  const [events, setEvents] = useState(endpoint.events);
  const [description, setDescription] = useState(endpoint.description ?? '');
  const [conditions, setConditions] = useState<Condition[]>(() => conditionsOf(endpoint.filter));
  const [headers, setHeaders] = useState<HeaderRow[]>([]);
  const [removeHeaders, setRemoveHeaders] = useState(false);
  const [rateLimit, setRateLimit] = useState(endpoint.rate_limit ? String(endpoint.rate_limit) : '');
  const [error, setError] = useState<ApiError>();
  const paths = filterPaths(types ?? [], admin ? events : endpoint.events);
  const submit = async (e: Event) => {
    e.preventDefault();
    // A filter with no conditions left is removed (null); headers are sent only when entered or removed.
    const filter = filterOf(conditions, paths) ?? (endpoint.filter ? null : undefined);
    const filterPart = filter !== undefined ? { filter } : {};
    const hdrs = removeHeaders ? null : headersOf(headers);
    const rate = rateLimitOf(rateLimit, Boolean(endpoint.rate_limit));
    const body: Record<string, unknown> = admin
      ? {
          url,
          events,
          description: description || null,
          ...filterPart,
          ...(hdrs !== undefined ? { headers: hdrs } : {}),
          ...(rate !== undefined ? { rate_limit: rate } : {}),
        }
      : filterPart;
    try {
      setError(undefined);
      await api('PATCH', `/api/v1/webhooks/${endpoint.id}`, body);
      setHeaders([]);
      setRemoveHeaders(false);
      onSaved();
    } catch (err) {
      setError(toApiError(err));
    }
  };
  return html`<form class="card form" onSubmit=${submit} aria-labelledby="edit-title">
    <h2 id="edit-title">${admin ? 'Settings' : 'Filter'}</h2>
    ${admin &&
    html`<label for="edit-url">URL</label>
      <input
        id="edit-url"
        type="url"
        required
        value=${url}
        aria-invalid=${errorsAt(error, 'url').length ? 'true' : undefined}
        onInput=${(e: Event) => setUrl((e.target as HTMLInputElement).value)}
      />
      <${FieldErrors} error=${error} path="url" id="edit-url-errors" />
      <${EventsField} id="edit-events" value=${events} onChange=${setEvents} types=${types} />
      <${FieldErrors} error=${error} path="events" id="edit-events-errors" />
      <label for="edit-description">Description</label>
      <input id="edit-description" value=${description} onInput=${(e: Event) => setDescription((e.target as HTMLInputElement).value)} />
      <${FieldErrors} error=${error} path="description" id="edit-description-errors" />`}
    ${!admin && html`<p class="muted">Subscribed to ${endpoint.events.map((t) => html`<code class="chip">${t}</code>`)}</p>`}
    <${FilterEditor} id="edit-filter" rows=${conditions} onChange=${setConditions} paths=${paths} error=${error} />
    ${admin &&
    html`<${HeadersEditor}
        id="edit-headers"
        rows=${headers}
        onChange=${setHeaders}
        current=${endpoint.headers ?? []}
        remove=${removeHeaders}
        onRemove=${setRemoveHeaders}
        error=${error}
      />
      <${RateLimitField} id="edit-rate" value=${rateLimit} onInput=${setRateLimit} error=${error} />`}
    <${ErrorNotice} error=${error} inline=${INLINE} />
    <button type="submit" class="primary">Save</button>
  </form>`;
}

function Replay({ id }: { id: string }) {
  const [since, setSince] = useState(isoToLocal(new Date(Date.now() - 3600_000).toISOString()));
  const [until, setUntil] = useState('');
  const [result, setResult] = useState<string>();
  const [error, setError] = useState<ApiError>();
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setResult(undefined);
    try {
      const r = await api<{ queued: number }>('POST', `/api/v1/webhooks/${id}/replay`, {
        since: localToIso(since),
        ...(until ? { until: localToIso(until) } : {}),
      });
      setResult(r.queued === 1 ? '1 event queued for replay.' : `${r.queued} events queued for replay.`);
    } catch (err) {
      setError(toApiError(err));
    }
  };
  return html`<form class="card form" onSubmit=${submit} aria-labelledby="replay-title">
    <h2 id="replay-title">Replay a window</h2>
    <p class="muted">Send this endpoint every matching event again, with the original event ids.</p>
    <label for="replay-since">Since</label>
    <input
      id="replay-since"
      type="datetime-local"
      required
      value=${since}
      onInput=${(e: Event) => setSince((e.target as HTMLInputElement).value)}
    />
    <${FieldErrors} error=${error} path="since" id="replay-since-errors" />
    <label for="replay-until">Until <span class="muted">(optional)</span></label>
    <input id="replay-until" type="datetime-local" value=${until} onInput=${(e: Event) => setUntil((e.target as HTMLInputElement).value)} />
    <${FieldErrors} error=${error} path="until" id="replay-until-errors" />
    ${result && html`<${Notice} kind="success">${result}<//>`}
    <${ErrorNotice} error=${error} inline=${['since', 'until']} missing="Replay is not available on this relay version." />
    <button type="submit">Replay</button>
  </form>`;
}
