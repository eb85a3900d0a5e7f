/**
 * Endpoint headers over HTTP: sent with every delivery to their endpoint only, stored encrypted when a key
 * is set, shown by name only, replaced or removed by PATCH, and refused (422 naming the header) when
 * reserved, malformed or unsafe.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { QueryTypes } from 'sequelize';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { DIALECTS } from './helpers/db.js';
import { metricEvent } from './helpers/relay.js';
import { eventually, startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';
import { webhookFixture } from './helpers/webhooks.js';
import type { WebhookFixture } from './helpers/webhooks.js';

const KEY = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';
const TOKEN = 'Bearer siem-token-5f1c2a9d7e';

describe.each(DIALECTS)('webhook endpoint headers (%s)', (dialect) => {
  let f: WebhookFixture;
  const sinks: Sink[] = [];
  const sink = async () => {
    const s = await startSink();
    sinks.push(s);
    return s;
  };
  afterEach(async () => {
    await f?.cleanup();
    await Promise.all(sinks.splice(0).map((s) => s.close()));
  });

  it('sends them with every delivery to that endpoint, signed as usual; reads show names only; at rest they are encrypted', async () => {
    f = await webhookFixture(dialect, { plugin: { encryptionKey: KEY } });
    const [withHeaders, plain] = [await sink(), await sink()];
    const created = await f.api('POST', '/webhooks', {
      url: withHeaders.url,
      events: ['metric.*'],
      headers: { Authorization: TOKEN, 'X-Api-Key': 'key-8c3e1b' },
    });
    expect(created.status).toBe(201);
    expect(created.body.headers).toEqual(['Authorization', 'X-Api-Key']);
    const other = await f.api('POST', '/webhooks', { url: plain.url, events: ['metric.*'] });
    expect(other.body.headers).toEqual([]);

    await f.relay.publish([metricEvent(), metricEvent()]);
    await withHeaders.waitFor(2);
    await plain.waitFor(2);
    const wh = new StandardWebhook(created.body.secret);
    for (const req of withHeaders.requests) {
      expect(req.headers.authorization).toBe(TOKEN);
      expect(req.headers['x-api-key']).toBe('key-8c3e1b');
      expect(req.headers['content-type']).toBe('application/json');
      expect(() => wh.verify(req.body, req.headers as Record<string, string>)).not.toThrow();
    }
    for (const req of plain.requests) {
      expect(req.headers.authorization).toBeUndefined();
      expect(req.headers['x-api-key']).toBeUndefined();
    }

    // Lists, reads, logs and the database never show a value.
    const listed = await f.api('GET', '/webhooks');
    const read = await f.api('GET', `/webhooks/${created.body.id}`);
    expect(read.body.headers).toEqual(['Authorization', 'X-Api-Key']);
    for (const text of [listed.text, read.text, f.logs.join('\n')]) {
      expect(text).not.toContain('siem-token');
      expect(text).not.toContain('key-8c3e1b');
    }
    const [row] = await f.fx.tdb.db.sequelize.query<{ headers: string }>('SELECT headers FROM relay_webhooks WHERE id = :id', {
      replacements: { id: created.body.id },
      type: QueryTypes.SELECT,
    });
    expect(row!.headers).toMatch(/^enc:v1:/);
    expect(row!.headers).not.toContain('siem-token');
  });

  it('PATCH replaces them all, and null removes them', async () => {
    f = await webhookFixture(dialect);
    const s = await sink();
    const created = await f.api('POST', '/webhooks', { url: s.url, events: ['*'], headers: { 'X-One': '1', 'X-Two': '2' } });
    const id = created.body.id as string;
    const patched = await f.api('PATCH', `/webhooks/${id}`, { headers: { 'X-Three': '3' } });
    expect(patched.status).toBe(200);
    expect(patched.body.headers).toEqual(['X-Three']);
    await f.relay.publish(metricEvent());
    await s.waitFor(1);
    expect(s.requests[0]!.headers['x-three']).toBe('3');
    expect(s.requests[0]!.headers['x-one']).toBeUndefined();

    expect((await f.api('PATCH', `/webhooks/${id}`, { headers: null })).body.headers).toEqual([]);
    await f.relay.publish(metricEvent());
    await s.waitFor(2);
    expect(s.requests[1]!.headers['x-three']).toBeUndefined();
    // A PATCH without `headers` keeps them.
    await f.api('PATCH', `/webhooks/${id}`, { headers: { 'X-Four': '4' } });
    expect((await f.api('PATCH', `/webhooks/${id}`, { description: 'kept' })).body.headers).toEqual(['X-Four']);
  });

  it('refuses reserved, malformed and unsafe headers with a 422 naming the header, and changes nothing', async () => {
    f = await webhookFixture(dialect, { paused: true });
    const bad = async (headers: unknown) => {
      const r = await f.api('POST', '/webhooks', { url: 'http://127.0.0.1:9/', events: ['*'], headers });
      expect(r.status, JSON.stringify(headers)).toBe(422);
      expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
      return (r.body.errors as Array<{ path: string; message: string }>).map((e) => `${e.path}: ${e.message}`).join('\n');
    };
    for (const name of ['webhook-signature', 'Webhook-Id', 'Content-Type', 'content-length', 'Host', 'Transfer-Encoding', 'Connection'])
      expect(await bad({ [name]: 'x' })).toMatch(new RegExp(`^headers\\.${name}: ${name} is set by the relay`, 'm'));
    expect(await bad({ 'Bad Name': 'x' })).toMatch(/^headers\.Bad Name: "Bad Name" is not a valid header name/m);
    expect(await bad({ 'X-Evil\r\nInjected': 'x' })).toMatch(/is not a valid header name/);
    expect(await bad({ 'X-Ok': 'a\r\nInjected: yes' })).toMatch(/^headers\.X-Ok: must not contain CR, LF/m);
    expect(await bad({ 'X-Ok': 'a\u0000b' })).toMatch(/^headers\.X-Ok: must not contain CR, LF/m);
    expect(await bad({ 'X-Ok': 5 })).toMatch(/^headers\.X-Ok: must be a string/m);
    expect(await bad({ 'X-A': '1', 'x-a': '2' })).toMatch(/given twice/);
    expect(await bad(['Authorization'])).toMatch(/^headers: must be an object/m);
    expect(await bad(Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`X-H${i}`, 'v'])))).toMatch(/at most 20 headers/);
    expect((await f.api('GET', '/webhooks')).body.data).toEqual([]);

    const ok = await f.api('POST', '/webhooks', { url: 'http://127.0.0.1:9/', events: ['*'], headers: { 'X-Keep': 'v' } });
    const r = await f.api('PATCH', `/webhooks/${ok.body.id}`, { headers: { host: 'evil.example' }, description: 'not applied' });
    expect(r.status).toBe(422);
    const after = await f.api('GET', `/webhooks/${ok.body.id}`);
    expect(after.body.headers).toEqual(['X-Keep']);
    expect(after.body.description).toBeNull();
  });

  it('delivers with headers stored before a key was set, once the key is set (sealed at start)', async () => {
    f = await webhookFixture(dialect);
    const s = await sink();
    const created = await f.api('POST', '/webhooks', { url: s.url, events: ['*'], headers: { Authorization: TOKEN } });
    const db = f.fx.tdb.db.sequelize;
    const stored = async () =>
      (
        await db.query<{ headers: string; secret: string }>('SELECT headers, secret FROM relay_webhooks WHERE id = :id', {
          replacements: { id: created.body.id },
          type: QueryTypes.SELECT,
        })
      )[0]!;
    expect((await stored()).headers).toContain('siem-token');
    // A second relay on the same database, now with a key: its start encrypts what was plaintext.
    const { webhooksTarget } = await import('../plugins/webhooks/index.js');
    const keyed = webhooksTarget({ db: f.fx.tdb.db, encryptionKey: KEY, allowPrivateNetworks: true });
    await f.relay.stop();
    const relay = await f.fx.make({ targets: [keyed], dispatcher: { pollIntervalMs: 50 } });
    const after = await stored();
    expect(after.headers).toMatch(/^enc:v1:/);
    expect(after.secret).toMatch(/^enc:v1:/);
    await relay.start();
    await relay.publish(metricEvent());
    await eventually(() => s.requests.length === 1);
    expect(s.requests[0]!.headers.authorization).toBe(TOKEN);
  });
});
