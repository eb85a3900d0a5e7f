/** The delivery log (filters in the address, cursor paging, recover dead) and one delivery with its attempts. */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import { api, query } from './api.js';
import type { ApiError, Delivery, DeliveryDetail, Session } from './api.js';
import { Badge, ErrorNotice, Json, Notice, fmtTime, href, isoToLocal, localToIso, toApiError } from './util.js';

const FILTERS = ['status', 'target', 'webhook_id', 'event_type', 'deviceid', 'since', 'until'] as const;
type Filters = Partial<Record<(typeof FILTERS)[number], string>>;
const STATUSES = ['pending', 'inflight', 'succeeded', 'dead'];

function filtersOf(params: URLSearchParams): Filters {
  const f: Filters = {};
  for (const k of FILTERS) {
    const v = params.get(k);
    if (v) f[k] = v;
  }
  return f;
}

function FilterForm({ filters, portal }: { filters: Filters; portal: boolean }) {
  const [draft, setDraft] = useState<Filters>(filters);
  useEffect(() => setDraft(filters), [JSON.stringify(filters)]);
  const set = (k: keyof Filters) => (e: Event) => setDraft({ ...draft, [k]: (e.target as HTMLInputElement).value });
  const submit = (e: Event) => {
    e.preventDefault();
    location.hash = href('/deliveries', {
      ...draft,
      since: localToIso(draft.since ?? '') || undefined,
      until: localToIso(draft.until ?? '') || undefined,
    });
  };
  const local = (v: string | undefined) => (v && v.includes('Z') ? isoToLocal(v) : (v ?? ''));
  return html`<form class="card filters" onSubmit=${submit} aria-label="Filter deliveries">
    <div class="field">
      <label for="f-status">Status</label>
      <select id="f-status" value=${draft.status ?? ''} onChange=${set('status')}>
        <option value="">Any</option>
        ${STATUSES.map((s) => html`<option value=${s}>${s}</option>`)}
      </select>
    </div>
    ${!portal &&
    html`<div class="field">
        <label for="f-target">Target</label
        ><input id="f-target" value=${draft.target ?? ''} placeholder="webhooks, mentor" onInput=${set('target')} />
      </div>
      <div class="field">
        <label for="f-endpoint">Endpoint id</label
        ><input id="f-endpoint" value=${draft.webhook_id ?? ''} placeholder="wh_…" onInput=${set('webhook_id')} />
      </div>`}
    <div class="field">
      <label for="f-type">Event type</label
      ><input id="f-type" value=${draft.event_type ?? ''} placeholder="metric.submitted" onInput=${set('event_type')} />
    </div>
    <div class="field">
      <label for="f-device">Device</label><input id="f-device" value=${draft.deviceid ?? ''} onInput=${set('deviceid')} />
    </div>
    <div class="field">
      <label for="f-since">Since</label><input id="f-since" type="datetime-local" value=${local(draft.since)} onInput=${set('since')} />
    </div>
    <div class="field">
      <label for="f-until">Until</label><input id="f-until" type="datetime-local" value=${local(draft.until)} onInput=${set('until')} />
    </div>
    <div class="field field-buttons">
      <button type="submit" class="primary">Apply</button>
      <a class="button ghost" href="#/deliveries">Clear</a>
    </div>
  </form>`;
}

function Recover({ filters }: { filters: Filters }) {
  const [since, setSince] = useState(isoToLocal(filters.since ?? new Date(Date.now() - 24 * 3600_000).toISOString()));
  const [until, setUntil] = useState(isoToLocal(filters.until));
  const [result, setResult] = useState<string>();
  const [error, setError] = useState<ApiError>();
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(undefined);
    setResult(undefined);
    try {
      const r = await api<{ requeued: number }>('POST', '/api/v1/deliveries/recover', {
        since: localToIso(since),
        ...(until ? { until: localToIso(until) } : {}),
        ...(filters.target ? { target: filters.target } : {}),
        ...(filters.webhook_id ? { webhook_id: filters.webhook_id } : {}),
      });
      setResult(`${r.requeued} dead deliveries re-queued.`);
    } catch (err) {
      setError(toApiError(err));
    }
  };
  return html`<details class="card recover">
    <summary>Recover dead deliveries in a window</summary>
    <form class="inline-form" onSubmit=${submit}>
      <div class="field">
        <label for="r-since">Since</label
        ><input
          id="r-since"
          type="datetime-local"
          required
          value=${since}
          onInput=${(e: Event) => setSince((e.target as HTMLInputElement).value)}
        />
      </div>
      <div class="field">
        <label for="r-until">Until</label
        ><input id="r-until" type="datetime-local" value=${until} onInput=${(e: Event) => setUntil((e.target as HTMLInputElement).value)} />
      </div>
      <div class="field field-buttons"><button type="submit">Re-queue dead deliveries</button></div>
    </form>
    <p class="muted small">Applies the target and endpoint filters above, when set.</p>
    ${result && html`<${Notice} kind="success">${result}<//>`}
    <${ErrorNotice} error=${error} />
  </details>`;
}

export function DeliveryLog({ params, session }: { params: URLSearchParams; session: Session }) {
  const portal = session.kind === 'portal';
  const filters = filtersOf(params);
  const key = JSON.stringify(filters);
  const [rows, setRows] = useState<Delivery[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [error, setError] = useState<ApiError>();
  const [loading, setLoading] = useState(true);
  const load = async (after: string | null, replace: boolean) => {
    setLoading(true);
    try {
      const page = await api<{ data: Delivery[]; next_cursor: string | null }>(
        'GET',
        `/api/v1/deliveries${query({ ...filters, limit: 50, cursor: after })}`,
      );
      setRows((prev) => (replace ? page.data : [...prev, ...page.data]));
      setCursor(page.next_cursor);
      setError(undefined);
    } catch (err) {
      setError(toApiError(err));
      if (replace) setRows([]);
    } finally {
      setLoading(false);
    }
  };
  useEffect(() => {
    void load(null, true);
  }, [key]);
  return html`<div class="page-head">
      <h1>Delivery log</h1>
      <p class="muted">${portal ? 'Every delivery to your endpoint, newest first.' : 'Every delivery, newest first.'}</p>
    </div>
    <${FilterForm} filters=${filters} portal=${portal} />
    ${!portal && html`<${Recover} filters=${filters} />`}
    <${ErrorNotice} error=${error} />
    <section class="card">
      <div class="table-head">
        <h2>Deliveries</h2>
        <button type="button" class="ghost" onClick=${() => load(null, true)}>Refresh</button>
      </div>
      <div class="table-wrap">
        <table class="deliveries">
          <thead>
            <tr>
              <th scope="col">Id</th>
              <th scope="col">Status</th>
              <th scope="col">Event</th>
              <th scope="col">Device</th>
              ${!portal && html`<th scope="col">Target</th>`}
              <th scope="col" class="num">Attempts</th>
              <th scope="col">Last answer</th>
              <th scope="col">Created</th>
            </tr>
          </thead>
          <tbody>
            ${rows.map(
              (d) =>
                html`<tr>
                  <td><a href=${`#/deliveries/${d.id}`}>#${d.id}</a></td>
                  <td><${Badge} status=${d.status} /></td>
                  <td><code>${d.event_type}</code></td>
                  <td>${d.deviceid ?? '—'}</td>
                  ${!portal &&
                  html`<td>
                    ${d.target}${d.webhook_id
                      ? html`<div class="muted small"><a href=${`#/endpoints/${d.webhook_id}`}>${d.webhook_id}</a></div>`
                      : ''}
                  </td>`}
                  <td class="num">${d.attempts}/${d.max_attempts}</td>
                  <td>${d.last_status_code ?? ''}${d.last_error ? html`<div class="muted small clip">${d.last_error}</div>` : ''}</td>
                  <td class="nowrap">${fmtTime(d.created_at)}</td>
                </tr>`,
            )}
          </tbody>
        </table>
      </div>
      ${!loading && rows.length === 0 && !error && html`<p class="muted empty">No deliveries match.</p>`}
      ${loading && html`<p class="muted" role="status">Loading…</p>`}
      ${cursor && !loading && html`<button type="button" class="more" onClick=${() => load(cursor, false)}>Load older deliveries</button>`}
    </section>`;
}

export function DeliveryPage({ id, session }: { id: string; session: Session }) {
  const [d, setD] = useState<DeliveryDetail>();
  const [error, setError] = useState<ApiError>();
  const [message, setMessage] = useState<string>();
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    api<DeliveryDetail>('GET', `/api/v1/deliveries/${encodeURIComponent(id)}`).then(
      (r) => live && (setD(r), setError(undefined)),
      (err: unknown) => live && setError(toApiError(err)),
    );
    return () => {
      live = false;
    };
  }, [id, tick]);
  // While it is still on its way, follow it.
  useEffect(() => {
    if (!d || (d.status !== 'pending' && d.status !== 'inflight')) return;
    const t = setTimeout(() => setTick((n) => n + 1), 1500);
    return () => clearTimeout(t);
  }, [d]);
  const retry = async () => {
    setMessage(undefined);
    try {
      await api('POST', `/api/v1/deliveries/${d!.id}/retry`);
      setMessage(`Delivery #${d!.id} re-queued.`);
      setTick((n) => n + 1);
    } catch (err) {
      setError(toApiError(err));
    }
  };
  if (!d)
    return html`<h1>Delivery #${id}</h1>
      ${error ? html`<${ErrorNotice} error=${error} />` : html`<p role="status">Loading…</p>`}`;
  return html`<div class="page-head">
      <p class="crumbs"><a href="#/deliveries">Delivery log</a> /</p>
      <h1>Delivery #${d.id} <${Badge} status=${d.status} /></h1>
    </div>
    ${message && html`<${Notice} kind="success">${message}<//>`}
    <${ErrorNotice} error=${error} />
    <div class="two-col">
      <section class="card">
        <h2>Summary</h2>
        <dl class="facts">
          <dt>Event</dt>
          <dd><code>${d.event_type}</code> <span class="muted small">${d.event_id}</span></dd>
          <dt>Device</dt>
          <dd>${d.deviceid ?? '—'}</dd>
          <dt>Target</dt>
          <dd>
            ${d.target}${d.webhook_id
              ? html` · ${session.kind === 'admin' ? html`<a href=${`#/endpoints/${d.webhook_id}`}>${d.webhook_id}</a>` : d.webhook_id}`
              : ''}
          </dd>
          <dt>Attempts</dt>
          <dd>${d.attempts} of ${d.max_attempts}</dd>
          <dt>Next attempt</dt>
          <dd>${d.status === 'pending' ? fmtTime(d.next_attempt_at) : '—'}</dd>
          <dt>Created</dt>
          <dd>${fmtTime(d.created_at)}</dd>
          <dt>Finished</dt>
          <dd>${fmtTime(d.finished_at)}</dd>
        </dl>
        <div class="button-row">
          <button type="button" class="primary" disabled=${d.status === 'inflight'} onClick=${retry}>Retry now</button>
          <a class="button ghost" href=${href('/deliveries', { event_type: d.event_type, deviceid: d.deviceid ?? undefined })}
            >Similar deliveries</a
          >
        </div>
      </section>
      <section class="card">
        <h2>Event payload</h2>
        <${Json} value=${d.event} label="Event payload" />
      </section>
    </div>
    <section class="card">
      <h2>Attempts</h2>
      ${d.attempts_log.length === 0 && html`<p class="muted">No attempt yet.</p>`}
      <ol class="attempts">
        ${d.attempts_log.map(
          (a) =>
            html`<li class="attempt">
              <div class="attempt-head">
                <strong>Attempt ${a.number}</strong>
                <${Badge} status=${a.outcome} />
                <span>${a.status_code === null ? 'no answer' : html`HTTP <span class="status-code">${a.status_code}</span>`}</span>
                <span class="muted">${fmtTime(a.started_at)} · ${a.duration_ms} ms${a.spent ? '' : ' · not counted'}</span>
              </div>
              ${a.error && html`<p class="attempt-error">${a.error}</p>`}
              ${a.response_body !== null &&
              html`<details open=${a.number === d.attempts_log.length}>
                <summary>Response body</summary>
                <pre class="code response-body" tabindex="0">${a.response_body || '(empty)'}</pre>
              </details>`}
            </li>`,
        )}
      </ol>
    </section>`;
}
