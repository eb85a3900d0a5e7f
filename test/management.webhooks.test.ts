import { afterEach, describe, expect, it } from 'vitest';
import { DIALECTS } from './helpers/db.js';
import { metricEvent } from './helpers/relay.js';
import { eventually, startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';
import { ADMIN_TOKEN, register, webhookFixture } from './helpers/webhooks.js';
import type { WebhookFixture } from './helpers/webhooks.js';

describe.each(DIALECTS)('management API: webhooks (%s)', (dialect) => {
  let f: WebhookFixture;
  let s: Sink | null = null;
  afterEach(async () => {
    await f?.cleanup();
    await s?.close();
    s = null;
  });

  it('registers, lists, reads, changes and deletes an endpoint', async () => {
    f = await webhookFixture(dialect, { paused: true });
    const created = await f.api('POST', '/webhooks', {
      url: 'http://127.0.0.1:9/hook',
      events: ['metric.*', 'alert.submitted', 'metric.*'],
      description: 'ops',
    });
    expect(created.status).toBe(201);
    const { id, secret } = created.body;
    expect(id).toMatch(/^wh_[0-9A-Z]{26}$/);
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(created.headers.get('location')).toBe(`/api/v1/webhooks/${id}`);
    expect(created.headers.get('cache-control')).toBe('no-store');
    expect(created.body).toMatchObject({
      url: 'http://127.0.0.1:9/hook',
      events: ['metric.*', 'alert.submitted'],
      description: 'ops',
      enabled: true,
      disabled_reason: null,
    });
    expect(Date.parse(created.body.created_at)).not.toBeNaN();

    const list = await f.api('GET', '/webhooks');
    expect(list.status).toBe(200);
    expect(list.body.data).toHaveLength(1);
    expect(list.body.data[0]).not.toHaveProperty('secret');
    expect(list.text).not.toContain(secret.slice(6));

    const read = await f.api('GET', `/webhooks/${id}`);
    expect(read.body).toEqual(list.body.data[0]);
    expect(read.text).not.toContain(secret.slice(6));

    const patched = await f.api('PATCH', `/webhooks/${id}`, { events: ['*'], description: null, enabled: false });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({
      events: ['*'],
      description: null,
      enabled: false,
      disabled_reason: 'disabled by an administrator',
    });
    expect(patched.text).not.toContain(secret.slice(6));

    expect((await f.api('DELETE', `/webhooks/${id}`)).status).toBe(204);
    for (const [method, path] of [
      ['GET', `/webhooks/${id}`],
      ['PATCH', `/webhooks/${id}`],
      ['DELETE', `/webhooks/${id}`],
      ['GET', `/webhooks/${id}/secret`],
      ['POST', `/webhooks/${id}/rotate-secret`],
    ] as const) {
      const r = await f.api(method, path, method === 'PATCH' ? { enabled: true } : undefined);
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
    }
  });

  it('shows the secret only on registration, GET /secret and rotation', async () => {
    f = await webhookFixture(dialect, { paused: true });
    const { id, secret } = await register(f, 'http://127.0.0.1:9/');
    const got = await f.api('GET', `/webhooks/${id}/secret`);
    expect(got.body).toEqual({ secret, previous_secret_expires_at: null, previous_secrets_expire_at: [] });
    expect(got.headers.get('cache-control')).toBe('no-store');
    const rotated = await f.api('POST', `/webhooks/${id}/rotate-secret`);
    expect(rotated.body.secret).not.toBe(secret);
    expect((await f.api('GET', `/webhooks/${id}/secret`)).body).toEqual(rotated.body);
    expect((await f.api('GET', '/webhooks')).text).not.toMatch(/whsec_/);
  });

  it('rejects bad input with problem+json naming each field', async () => {
    f = await webhookFixture(dialect, { paused: true });
    const bad = async (body: unknown) => {
      const r = await f.api('POST', '/webhooks', body);
      expect(r.status, JSON.stringify(body)).toBe(422);
      return (r.body.errors as Array<{ path: string; message: string }>).map((e) => `${e.path}: ${e.message}`).join('\n');
    };
    expect(await bad({ events: ['*'] })).toMatch(/^url:/m);
    expect(await bad({ url: 'http://127.0.0.1:9/' })).toMatch(/^events:/m);
    expect(await bad({ url: 'http://127.0.0.1:9/', events: [] })).toMatch(/^events: must list at least one/m);
    expect(await bad({ url: 'http://127.0.0.1:9/', events: ['metrics.*'] })).toMatch(/^events\[0\]: metrics\.\* matches no event type/m);
    expect(await bad({ url: 'http://127.0.0.1:9/', events: ['*', 'metric.submited'] })).toMatch(
      /^events\[1\]: unknown event type metric\.submited/m,
    );
    expect(await bad({ url: 'http://127.0.0.1:9/', events: ['metric'] })).toMatch(/^events\[0\]: "metric" is not an event type/m);
    expect(await bad({ url: 'http://127.0.0.1:9/', events: ['*'], enabled: 'yes' })).toMatch(/^enabled:/m);
    expect(await bad([1, 2])).toMatch(/^\(body\): The request body must be a JSON object/m);
    expect(await bad({ url: 'not a url', events: ['*'] })).toMatch(/^url: url must be an absolute/m);

    expect((await f.api('POST', '/webhooks', '{"url": ', { 'content-type': 'application/json' })).status).toBe(400);
    expect((await f.api('POST', '/webhooks', 'url=x', { 'content-type': 'application/x-www-form-urlencoded' })).status).toBe(415);
    expect((await f.api('PATCH', '/webhooks/wh_x', { events: 'metric.*' })).status).toBe(422);
  });

  it('keeps secrets and the admin token out of every log line', async () => {
    f = await webhookFixture(dialect);
    s = await startSink();
    const sink = s;
    sink.respond((_req, i) => (i === 0 ? { status: 500, body: 'nope' } : { status: 200 }));
    const { id, secret } = await register(f, sink.url);
    const rotated = (await f.api('POST', `/webhooks/${id}/rotate-secret`)).body.secret as string;
    await f.api('GET', `/webhooks/${id}/secret`);
    await f.api('POST', `/webhooks/${id}/test`);
    await f.relay.publish(metricEvent());
    await eventually(async () => (await f.relay.listDeliveries({ status: 'succeeded' })).data.length === 2);
    await f.api('GET', '/webhooks', undefined, { authorization: 'Bearer wrong-token' });
    await f.api('DELETE', `/webhooks/${id}`);
    expect(f.logs.length).toBeGreaterThan(5);
    const all = f.logs.join('\n');
    for (const value of [secret, secret.slice(6), rotated, rotated.slice(6), ADMIN_TOKEN]) expect(all).not.toContain(value);
    // The audit trail is there, by id.
    expect(all).toContain(`webhook endpoint ${id} created`);
    expect(all).toContain(`webhook endpoint ${id} secret rotated`);
  });
});
