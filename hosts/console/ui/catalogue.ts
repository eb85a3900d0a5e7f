/** The event catalogue: every type with its description, its fields, JSON Schema and an example payload. */
import { html } from 'htm/preact';
import { api } from './api.js';
import type { EventType } from './api.js';
import { ErrorNotice, Json, useLoad } from './util.js';

type Schema = Record<string, unknown>;

/** A field of an event's data, flattened to a dotted path (what a filter names), with its JSON types. */
interface Field {
  path: string;
  type: string;
  required: boolean;
  description?: string;
}

function typeOf(s: Schema): string {
  if (Array.isArray(s.anyOf)) return [...new Set((s.anyOf as Schema[]).map(typeOf))].join(' | ');
  if (Array.isArray(s.enum)) return (s.enum as unknown[]).map((v) => JSON.stringify(v)).join(' | ');
  if ('const' in s) return JSON.stringify(s.const);
  if (Array.isArray(s.type)) return (s.type as string[]).join(' | ');
  if (s.type === 'array' && s.items && typeof s.items === 'object') return `${typeOf(s.items as Schema)}[]`;
  return typeof s.type === 'string' ? s.type : 'any';
}

function fields(schema: Schema, prefix = 'data', depth = 0): Field[] {
  const props = schema.properties as Record<string, Schema> | undefined;
  if (!props) return [];
  const required = new Set((schema.required as string[] | undefined) ?? []);
  return Object.entries(props).flatMap(([name, sub]) => {
    const path = `${prefix}.${name}`;
    const own: Field = {
      path,
      type: typeOf(sub),
      required: required.has(name),
      description: typeof sub.description === 'string' ? sub.description : undefined,
    };
    return sub.properties && depth < 6 ? [own, ...fields(sub, path, depth + 1)] : [own];
  });
}

function FieldTable({ type }: { type: EventType }) {
  const rows = fields(type.schema ?? {});
  if (rows.length === 0) return html`<p class="muted">Any object: this type declares no fields.</p>`;
  return html`<div class="table-wrap">
    <table class="fields">
      <caption class="sr-only">
        Fields of ${type.name}
      </caption>
      <thead>
        <tr>
          <th scope="col">Field</th>
          <th scope="col">Type</th>
        </tr>
      </thead>
      <tbody>
        ${rows.map(
          (f) =>
            html`<tr>
              <td><code>${f.path}</code>${f.required ? '' : html` <span class="muted small">optional</span>`}</td>
              <td><code class="type">${f.type}</code>${f.description ? html`<div class="muted small">${f.description}</div>` : ''}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  </div>`;
}

export function Catalogue() {
  const types = useLoad(() => api<{ data: EventType[] }>('GET', '/api/v1/event-types'), []);
  const jump = (e: Event, name: string) => {
    e.preventDefault();
    const target = document.getElementById(`type-${name}`);
    target?.scrollIntoView();
    target?.focus();
  };
  return html`<div class="page-head">
      <h1>Event catalogue</h1>
      <p class="muted">
        What each event type carries: its fields (the paths an endpoint filter can use), the JSON Schema of its <code>data</code>, and an
        example.
      </p>
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
          html`<a href=${`#/catalogue`} class=${t.operational ? 'operational' : undefined} onClick=${(e: Event) => jump(e, t.name)}
            ><code>${t.name}</code></a
          >`,
      )}
      ${types.data.data.some((t) => t.operational) &&
      html`<p class="help toc-legend"><span class="badge badge-operational">operational</span> the relay's own events</p>`}
    </nav>`}
    ${types.data?.data.map(
      (t) =>
        html`<section class="card event-type" id=${`type-${t.name}`} tabindex="-1" aria-labelledby=${`h-${t.name}`}>
          <h2 id=${`h-${t.name}`}>
            <code>${t.name}</code>${t.operational ? html` <span class="badge badge-operational">operational</span>` : ''}
          </h2>
          <p>${t.description}</p>
          <div class="two-col">
            <div>
              <h3>Fields</h3>
              <${FieldTable} type=${t} />
              <details class="schema">
                <summary>JSON Schema</summary>
                <${Json} value=${t.schema} label=${`${t.name} schema`} />
              </details>
            </div>
            <div>
              <h3>Example</h3>
              <${Json} value=${t.example} label=${`${t.name} example`} />
            </div>
          </div>
        </section>`,
    )}`;
}
