/** The event catalogue: every type with its description, JSON Schema and an example payload. */
import { html } from 'htm/preact';
import { api } from './api.js';
import type { EventType } from './api.js';
import { ErrorNotice, Json, useLoad } from './util.js';

export function Catalogue() {
  const types = useLoad(() => api<{ data: EventType[] }>('GET', '/api/v1/event-types'), []);
  return html`<div class="page-head">
      <h1>Event catalogue</h1>
      <p class="muted">What each event type carries, as JSON Schema, with an example.</p>
    </div>
    <${ErrorNotice}
      error=${types.error}
      missing="The event catalogue is not available on this relay version (GET /api/v1/event-types answers 404)."
    />
    ${types.loading && !types.data && html`<p role="status">Loading…</p>`}
    ${types.data &&
    html`<nav class="card toc" aria-label="Event types">
      ${types.data.data.map(
        (t) =>
          html`<a
            href=${`#/catalogue`}
            onClick=${(e: Event) => (e.preventDefault(), document.getElementById(`type-${t.name}`)?.scrollIntoView())}
            ><code>${t.name}</code></a
          >`,
      )}
    </nav>`}
    ${types.data?.data.map(
      (t) =>
        html`<section class="card event-type" id=${`type-${t.name}`} aria-labelledby=${`h-${t.name}`}>
          <h2 id=${`h-${t.name}`}>
            <code>${t.name}</code>${t.operational ? html` <span class="badge badge-operational">operational</span>` : ''}
          </h2>
          <p>${t.description}</p>
          <div class="two-col">
            <div>
              <h3>Schema</h3>
              <${Json} value=${t.schema} label=${`${t.name} schema`} />
            </div>
            <div>
              <h3>Example</h3>
              <${Json} value=${t.example} label=${`${t.name} example`} />
            </div>
          </div>
        </section>`,
    )}`;
}
