/**
 * The typed event catalogue (`GET /api/v1/event-types`): every event type an endpoint may subscribe to, with
 * a description, the JSON Schema of its `data` (generated from the zod schema the publisher builds it with),
 * an example payload, and whether it is operational (the relay's own events, `operational.ts`).
 *
 * The host passes its events in (`webhooksTarget({ catalogue })`): the plugin cannot import the host's
 * record code (layer rule), and the host is the one that knows what it publishes. The plugin adds its own
 * `webhook.test` and the operational events. Registration checks `events` and `filter` against it.
 */
import { z } from 'zod';
import { matchesEventType } from '../../lib/events.js';
import { OPERATIONAL_EVENTS, isOperationalEvent } from './operational.js';

/** One event type as a host declares it. */
export interface EventTypeDefinition {
  name: string;
  description: string;
  /** The zod schema of the event's `data`; without one, `data` is any object (and filters cannot name its fields). */
  data?: z.ZodType;
  /** An example `data`; the catalogue wraps it in `{type, timestamp, data}`. */
  example?: Record<string, unknown>;
  /** When the example happened (a fixed time keeps the generated docs stable). */
  exampleTimestamp?: string;
  operational?: boolean;
}

/** A JSON Schema object, as `z.toJSONSchema` renders one. */
export type JsonSchema = Record<string, unknown>;

/** One entry of `GET /api/v1/event-types` (the console's event page reads exactly this shape). */
export interface EventTypeEntry {
  name: string;
  description: string;
  operational: boolean;
  schema: JsonSchema;
  example: { type: string; timestamp: string; data: Record<string, unknown> };
}

/** The zod schema of one catalogue entry (the OpenAPI document renders `GET /api/v1/event-types` from it). */
export const eventTypeEntrySchema = z.object({
  name: z.string(),
  description: z.string(),
  operational: z.boolean(),
  schema: z.record(z.string(), z.unknown()).describe('JSON Schema (draft 2020-12) of the event data'),
  example: z.object({ type: z.string(), timestamp: z.string(), data: z.record(z.string(), z.unknown()) }),
});

/** Every event type a relay knows, with schemas and examples: what registration and filters are checked against. */
export interface EventCatalogue {
  /** Every entry, device events first, then `webhook.test` and the operational events. */
  readonly entries: readonly EventTypeEntry[];
  /** Every type name, in the same order. */
  readonly names: readonly string[];
  /** One type's entry, or undefined when unknown. */
  get(name: string): EventTypeEntry | undefined;
  /** The zod schema of a type's data, when the host declared one. */
  dataSchema(name: string): z.ZodType | undefined;
}

/** The `webhook.test` event's catalogue definition (sent by the management API's test route). */
export const WEBHOOK_TEST_EVENT: EventTypeDefinition = {
  name: 'webhook.test',
  description: 'Sent by POST /api/v1/webhooks/{id}/test, to that endpoint only, whatever it subscribes to',
  data: z.object({ webhook_id: z.string(), message: z.string() }),
  example: { webhook_id: 'wh_01JH3ZB2K8M4N6P8R0T2V4X6Z8', message: 'A test event from raqeem-relay' },
  exampleTimestamp: '2025-01-15T10:36:00.000Z',
};

const EXAMPLE_TIME = '2025-01-15T10:40:00.000Z';
const anyData = z.record(z.string(), z.unknown());

/** Host events plus `webhook.test` and the operational events (a host may not redefine those). */
export function buildCatalogue(host: readonly EventTypeDefinition[]): EventCatalogue {
  const own = [
    WEBHOOK_TEST_EVENT,
    ...OPERATIONAL_EVENTS.map(
      (e): EventTypeDefinition => ({
        name: e.type,
        description: e.description,
        data: e.data,
        example: { ...e.example },
        operational: true,
      }),
    ),
  ];
  const defs = [...host.filter((d) => !own.some((o) => o.name === d.name)), ...own];
  const seen = new Set<string>();
  for (const d of defs) {
    if (seen.has(d.name)) throw new Error(`event type ${d.name} is declared twice in the webhooks catalogue`);
    seen.add(d.name);
  }
  const schemas = new Map(defs.map((d) => [d.name, d.data]));
  const entries: EventTypeEntry[] = defs.map((d) => ({
    name: d.name,
    description: d.description,
    operational: d.operational ?? false,
    schema: toJsonSchema(d.data ?? anyData),
    example: { type: d.name, timestamp: d.exampleTimestamp ?? EXAMPLE_TIME, data: d.example ?? {} },
  }));
  const byName = new Map(entries.map((e) => [e.name, e]));
  return {
    entries,
    names: entries.map((e) => e.name),
    get: (name) => byName.get(name),
    dataSchema: (name) => schemas.get(name),
  };
}

/**
 * The catalogue types an endpoint subscribed to `events` receives: never `webhook.test` (sent to one endpoint
 * whatever it subscribes to), and operational events only when named (`endpoint.*`, `delivery.dead`), not
 * through `*`, as the webhooks plugin routes them.
 */
export function subscribedTypes(catalogue: EventCatalogue, events: readonly string[]): string[] {
  const named = events.filter((p) => p !== '*');
  return catalogue.names.filter((t) => t !== 'webhook.test' && matchesEventType(isOperationalEvent(t) ? named : events, t));
}

/** A catalogue of bare names (no schemas): what a plugin built with only `eventTypes` offers. */
export function namesCatalogue(names: readonly string[], describe: (name: string) => string = () => ''): EventCatalogue {
  return buildCatalogue(names.map((name) => ({ name, description: describe(name) })));
}

function toJsonSchema(schema: z.ZodType): JsonSchema {
  // `output`: the shape receivers get. No `$schema` key: the entry is embedded in a larger document.
  const { $schema: _drop, ...rest } = z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

/** Top-level fields of a type's data, for the docs table: `name` plus `?` when it may be null. */
export function dataFields(entry: EventTypeEntry): string[] {
  const props = (entry.schema.properties ?? {}) as Record<string, JsonSchema>;
  return Object.entries(props).map(([name, s]) => (jsonTypes(s).includes('null') ? `${name}?` : name));
}

/** The JSON types a schema admits (`anyOf`s flattened); empty when it admits anything. */
export function jsonTypes(s: JsonSchema): string[] {
  if (Array.isArray(s.anyOf)) {
    const parts = (s.anyOf as JsonSchema[]).map(jsonTypes);
    return parts.some((p) => p.length === 0) ? [] : [...new Set(parts.flat())];
  }
  const norm = (t: string) => (t === 'integer' ? 'number' : t);
  if (Array.isArray(s.type)) return [...new Set((s.type as string[]).map(norm))];
  if (typeof s.type === 'string') return [norm(s.type)];
  if (Array.isArray(s.enum)) return [...new Set((s.enum as unknown[]).map((v) => (v === null ? 'null' : typeof v)))];
  if ('const' in s) return [s.const === null ? 'null' : typeof s.const];
  return [];
}

/**
 * The event table of docs/webhooks.md, rendered from the catalogue; `test/webhooks.catalogue.test.ts` keeps
 * the page equal to it.
 */
export function catalogueTable(catalogue: EventCatalogue): string {
  const rows = catalogue.entries.map(
    (e) =>
      `| \`${e.name}\` | ${e.operational ? 'yes' : 'no'} | ${e.description.replaceAll('|', '\\|')} | ${dataFields(e)
        .map((f) => `\`${f}\``)
        .join(', ')} |`,
  );
  return ['| Event | Operational | Description | `data` fields (`?`: may be null) |', '| --- | --- | --- | --- |', ...rows].join('\n');
}
