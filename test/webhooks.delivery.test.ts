import { afterEach, describe, expect, it } from 'vitest';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';
import { createEvent } from '../lib/events.js';
import { WebhookVerificationError, verify } from '../lib/signing.js';
import { DIALECTS } from './helpers/db.js';
import { metricEvent } from './helpers/relay.js';
import { eventually, startSink } from './helpers/sink.js';
import type { ReceivedRequest, Sink } from './helpers/sink.js';
import { register, webhookFixture } from './helpers/webhooks.js';
import type { WebhookFixture } from './helpers/webhooks.js';

/** A receiver that answers 204 only to requests its verifier accepts, 400 otherwise. */
function verifyingReceiver(sink: Sink, verifier: (req: ReceivedRequest) => unknown): { verified: ReceivedRequest[]; rejected: unknown[] } {
  const verified: ReceivedRequest[] = [];
  const rejected: unknown[] = [];
  sink.respond((req) => {
    try {
      verifier(req);
      verified.push(req);
      return { status: 204 };
    } catch (err) {
      rejected.push(err);
      return { status: 400, body: '{"error":"bad signature"}' };
    }
  });
  return { verified, rejected };
}

const settled = (f: WebhookFixture) => async () => {
  const pending = await f.relay.listDeliveries({ status: 'pending' });
  const inflight = await f.relay.listDeliveries({ status: 'inflight' });
  return pending.data.length === 0 && inflight.data.length === 0;
};

describe.each(DIALECTS)('webhook delivery (%s)', (dialect) => {
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

  it('delivers {type, timestamp, data} that the standardwebhooks package verifies, with webhook-id = event id', async () => {
    f = await webhookFixture(dialect);
    const s = await sink();
    const { secret } = await register(f, `${s.url}/hook`);
    const wh = new StandardWebhook(secret);
    const r = verifyingReceiver(s, (req) => wh.verify(req.body, req.headers as Record<string, string>));
    const events = [
      metricEvent('dev-a'),
      createEvent({ type: 'device.registered', deviceid: 'dev-a', data: { deviceid: 'dev-a', device_name: 'A' } }),
    ];
    await f.relay.publish(events);
    await s.waitFor(2);
    await eventually(async () => (await f.relay.listDeliveries({ status: 'succeeded' })).data.length === 2);
    expect(r.rejected).toEqual([]);
    expect(r.verified).toHaveLength(2);
    for (const e of events) {
      const req = r.verified.find((x) => x.headers['webhook-id'] === e.id)!;
      expect(req.path).toBe('/hook');
      expect(JSON.parse(req.body)).toEqual({ type: e.type, timestamp: e.timestamp, data: e.data });
      expect(req.headers['idempotency-key']).toBe(e.id);
      expect(req.headers['content-type']).toBe('application/json');
    }
  });

  it('delivers requests that the svix package verifies', async () => {
    f = await webhookFixture(dialect);
    const s = await sink();
    const { secret } = await register(f, s.url, ['metric.*']);
    const wh = new SvixWebhook(secret);
    const r = verifyingReceiver(s, (req) => wh.verify(req.body, req.headers as Record<string, string>));
    await f.relay.publish([metricEvent(), metricEvent(), metricEvent()]);
    await eventually(async () => (await f.relay.listDeliveries({ status: 'succeeded' })).data.length === 3);
    expect(r.rejected).toEqual([]);
    expect(r.verified).toHaveLength(3);
  });

  it('sends both signatures during a rotation, each verifying with its own secret', async () => {
    f = await webhookFixture(dialect);
    const s = await sink();
    const { id, secret: oldSecret } = await register(f, s.url);
    const rotated = await f.api('POST', `/webhooks/${id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    const newSecret: string = rotated.body.secret;
    expect(newSecret).not.toBe(oldSecret);
    const expires = Date.parse(rotated.body.previous_secret_expires_at) - Date.now();
    expect(expires).toBeGreaterThan(23 * 3600_000);
    expect(expires).toBeLessThanOrEqual(24 * 3600_000);
    const oldWh = new StandardWebhook(oldSecret);
    const newWh = new StandardWebhook(newSecret);
    const r = verifyingReceiver(s, (req) => {
      oldWh.verify(req.body, req.headers as Record<string, string>);
      newWh.verify(req.body, req.headers as Record<string, string>);
      verify(req.body, req.headers, oldSecret);
      verify(req.body, req.headers, newSecret);
    });
    await f.relay.publish(metricEvent());
    await s.waitFor(1);
    expect(r.rejected).toEqual([]);
    expect(String(s.requests[0]!.headers['webhook-signature']).split(' ')).toHaveLength(2);
    // The secret endpoint shows the new secret.
    expect((await f.api('GET', `/webhooks/${id}/secret`)).body.secret).toBe(newSecret);
  });

  it('a captured delivery replayed later is rejected by verify (timestamp too old)', async () => {
    f = await webhookFixture(dialect);
    const s = await sink();
    const { secret } = await register(f, s.url);
    await f.relay.publish(metricEvent());
    await s.waitFor(1);
    const req = s.requests[0]!;
    const sentAt = Number(req.headers['webhook-timestamp']);
    expect(verify(req.body, req.headers, secret, { now: sentAt + 10 }).id).toBe(req.headers['webhook-id']);
    let caught: unknown;
    try {
      verify(req.body, req.headers, secret, { now: sentAt + 301 });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(WebhookVerificationError);
    expect((caught as WebhookVerificationError).reason).toBe('timestamp_too_old');
  });

  it('routes by subscription: "*", "metric.*", exact types; disabled endpoints get nothing', async () => {
    f = await webhookFixture(dialect);
    const [all, metrics, exact, disabled] = [await sink(), await sink(), await sink(), await sink()];
    await register(f, all.url, ['*']);
    await register(f, metrics.url, ['metric.*']);
    await register(f, exact.url, ['alert.submitted', 'device.registered']);
    const d = await register(f, disabled.url, ['*']);
    expect((await f.api('PATCH', `/webhooks/${d.id}`, { enabled: false })).body.enabled).toBe(false);
    const types = ['metric.submitted', 'alert.submitted', 'device.registered', 'activity.submitted'];
    await f.relay.publish(types.map((type) => createEvent({ type, deviceid: 'dev-r', data: { deviceid: 'dev-r' } })));
    await eventually(settled(f));
    const got = (x: Sink) => x.requests.map((r) => JSON.parse(r.body).type).sort();
    expect(got(all)).toEqual([...types].sort());
    expect(got(metrics)).toEqual(['metric.submitted']);
    expect(got(exact)).toEqual(['alert.submitted', 'device.registered']);
    expect(disabled.requests).toHaveLength(0);
    expect((await f.relay.listDeliveries({ webhookId: d.id })).data).toHaveLength(0);
  });

  it('sees registrations and subscription changes at once (the endpoint cache is invalidated)', async () => {
    f = await webhookFixture(dialect);
    const a = await sink();
    await f.relay.publish(metricEvent());
    const { id } = await register(f, a.url, ['alert.submitted']);
    await f.relay.publish(metricEvent());
    expect((await f.relay.listDeliveries({ webhookId: id })).data).toHaveLength(0);
    await f.api('PATCH', `/webhooks/${id}`, { events: ['metric.submitted'] });
    await f.relay.publish(metricEvent());
    await a.waitFor(1);
    expect((await f.relay.listDeliveries({ webhookId: id })).data).toHaveLength(1);
  });

  it('stores secrets AES-256-GCM encrypted when a key is set, and still signs with them', async () => {
    f = await webhookFixture(dialect, { plugin: { encryptionKey: 'ab'.repeat(32) } });
    const s = await sink();
    const { id, secret } = await register(f, s.url);
    const [row] = (
      await f.fx.tdb.db.sequelize.query('SELECT secret FROM relay_webhooks WHERE id = :id', { replacements: { id } })
    )[0] as Array<{ secret: string }>;
    expect(row!.secret.startsWith('enc:v1:')).toBe(true);
    expect(row!.secret).not.toContain(secret.slice(6));
    const r = verifyingReceiver(s, (req) => new StandardWebhook(secret).verify(req.body, req.headers as Record<string, string>));
    await f.relay.publish(metricEvent());
    await s.waitFor(1);
    expect(r.verified).toHaveLength(1);
  });

  it('sends a webhook.test event to the one endpoint it names', async () => {
    f = await webhookFixture(dialect);
    const [a, b] = [await sink(), await sink()];
    const { id } = await register(f, a.url, ['metric.submitted']);
    await register(f, b.url, ['*']);
    const r = await f.api('POST', `/webhooks/${id}/test`);
    expect(r.status).toBe(202);
    expect(r.body.type).toBe('webhook.test');
    await a.waitFor(1);
    await eventually(settled(f));
    const body = JSON.parse(a.requests[0]!.body);
    expect(body.type).toBe('webhook.test');
    expect(body.data.webhook_id).toBe(id);
    expect(a.requests[0]!.headers['webhook-id']).toBe(r.body.event_id);
    expect(b.requests).toHaveLength(0);
    await f.api('PATCH', `/webhooks/${id}`, { enabled: false });
    expect((await f.api('POST', `/webhooks/${id}/test`)).status).toBe(409);
    expect((await f.api('POST', '/webhooks/wh_nope/test')).status).toBe(404);
  });
});
