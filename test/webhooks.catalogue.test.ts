/**
 * The typed event catalogue (issue 13 item 5): `GET /api/v1/event-types` on a real devices host, real
 * published events (stored and delivered to a real receiver) validate against their catalogue schema on both
 * dialects, and docs/webhooks.md's event table and examples are the catalogue's.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DEVICES_CATALOGUE, deviceEventData } from '../hosts/devices/catalogue.js';
import { DEVICE_EVENT_TYPES } from '../lib/events.js';
import { buildCatalogue, catalogueTable, eventTypeEntrySchema } from '../plugins/webhooks/catalogue.js';
import { OPERATIONAL_EVENT_TYPES } from '../plugins/webhooks/operational.js';
import { DIALECTS } from './helpers/db.js';
import { startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';
import { imageForm, PNG, startDevices } from './devices.fixture.js';
import type { DevicesFixture } from './devices.fixture.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DOC = readFileSync(path.join(ROOT, 'docs/webhooks.md'), 'utf8');
const ADMIN = 'catalogue-admin-token-5d2e';
const catalogue = buildCatalogue(DEVICES_CATALOGUE);

/** The data schema of a type, refusing fields it does not declare. */
function strictSchema(type: string): z.ZodType {
  const s = catalogue.dataSchema(type);
  if (!s) throw new Error(`no schema for ${type}`);
  return s instanceof z.ZodObject ? s.strict() : s;
}

describe('the catalogue', () => {
  it('lists every device event, webhook.test and the operational events, each example valid against its schema', () => {
    expect(catalogue.names).toEqual([...DEVICE_EVENT_TYPES, 'webhook.test', ...OPERATIONAL_EVENT_TYPES]);
    for (const e of catalogue.entries) {
      expect(eventTypeEntrySchema.strict().parse(e)).toEqual(e);
      expect(e.operational).toBe(OPERATIONAL_EVENT_TYPES.includes(e.name as never));
      expect(e.example.type).toBe(e.name);
      expect(new Date(e.example.timestamp).toISOString()).toBe(e.example.timestamp);
      expect(() => strictSchema(e.name).parse(e.example.data), e.name).not.toThrow();
      expect(e.schema.type).toBe('object');
      expect(Object.keys(e.schema.properties as object).sort()).toEqual(Object.keys(e.example.data).sort());
    }
  });

  it('docs/webhooks.md shows the table generated from it, and its examples', () => {
    const table = /<!-- catalogue-table:start -->\n([\s\S]*?)\n<!-- catalogue-table:end -->/.exec(DOC);
    expect(table, 'docs/webhooks.md has no catalogue table markers').not.toBeNull();
    expect(table![1]).toBe(catalogueTable(catalogue));
    const re = /<!-- doc-check: example (\S+) -->\s*```\w*\n([\s\S]*?)```/g;
    const examples = [...DOC.matchAll(re)];
    expect(examples.length).toBeGreaterThan(0);
    for (const [, type, json] of examples) expect(JSON.parse(json!), type).toEqual(catalogue.get(type!)!.example);
  });
});

describe.each(DIALECTS)('event catalogue on the devices host (%s)', (dialect) => {
  let f: DevicesFixture | undefined;
  let sink: Sink | undefined;
  afterEach(async () => {
    await f?.cleanup();
    await sink?.close();
    f = sink = undefined;
  });

  it('GET /event-types needs the admin token and serves the catalogue', async () => {
    f = await startDevices(dialect, { env: { RELAY_ADMIN_TOKEN: ADMIN } });
    expect((await f.call('GET', '/event-types')).status).toBe(401);
    const r = await f.call('GET', '/event-types', undefined, { headers: { authorization: `Bearer ${ADMIN}` } });
    expect(r.status).toBe(200);
    expect(r.json).toEqual({ data: JSON.parse(JSON.stringify(catalogue.entries)) });
    // Registration is checked against the same list: the mentor's command.created is not a devices-host event.
    const refused = await f.call(
      'POST',
      '/webhooks',
      { url: 'https://hooks.example.com/x', events: ['command.created'] },
      { headers: { authorization: `Bearer ${ADMIN}` } },
    );
    expect(refused.status).toBe(422);
    expect(refused.json.errors[0].path).toBe('events[0]');
  });

  it('every event the host publishes validates against its catalogue schema, as stored and as delivered', async () => {
    sink = await startSink();
    f = await startDevices(dialect, { env: { RELAY_ADMIN_TOKEN: ADMIN, WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true' } });
    const admin = { headers: { authorization: `Bearer ${ADMIN}` } };
    expect((await f.call('POST', '/webhooks', { url: sink.url, events: ['*'] }, admin)).status).toBe(201);
    await f.call('POST', '/devices/register', { deviceid: 'dev-1', device_name: 'Laptop', os: 'Linux' });
    await f.call('POST', '/devices/dev-1/metrics', { cpu_usage: 42, memory_total: 8_000_000_000 });
    await f.call('POST', '/devices/dev-1/activities', [{ activity_type: 'a', duration: 30 }, { activity_type: 'b' }]);
    await f.call('POST', '/devices/dev-1/alerts', [{ level: 'warning', alert_type: 'disk', value: 91.5, threshold: 90 }]);
    await f.call('POST', '/devices/dev-1/processes', [{ pid: 1, process_name: 'init', cpu: 0.5 }]);
    expect((await f.call('POST', '/devices/dev-1/screenshots', imageForm(PNG))).status).toBe(201);
    // With RELAY_ADMIN_TOKEN set, creating a command on the devices host takes the admin token (issue 12).
    await f.call('POST', '/devices/dev-1/commands', { commandid: 'cmd-1', command_text: 'status' }, admin);
    await f.call('POST', '/devices/commands/cmd-1/result', { status: 'completed', result: 'ok', exit_code: 0 });
    await sink.waitFor(8);

    const delivered = sink.requests.map((r) => JSON.parse(r.body) as { type: string; data: unknown });
    expect(new Set(delivered.map((d) => d.type))).toEqual(new Set(DEVICE_EVENT_TYPES));
    for (const d of delivered) expect(() => strictSchema(d.type).parse(d.data), d.type).not.toThrow();
    const stored = await f.rows('SELECT type, data FROM relay_events');
    expect(stored).toHaveLength(8);
    for (const row of stored)
      expect(() => strictSchema(String(row.type)).parse(JSON.parse(String(row.data))), String(row.type)).not.toThrow();
    // The zod schemas are the ones the catalogue's JSON Schemas were generated from.
    for (const type of DEVICE_EVENT_TYPES) {
      const { $schema: _s, ...generated } = z.toJSONSchema(deviceEventData[type], { io: 'output' });
      expect(catalogue.get(type)!.schema, type).toEqual(generated);
    }
  });
});
