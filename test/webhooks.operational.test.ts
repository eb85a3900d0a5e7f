/**
 * Operational events end to end with real receivers: `endpoint.disabled`, `endpoint.failing`,
 * `endpoint.recovered` and `delivery.dead` are emitted on the relay, counted, logged and delivered signed to
 * the endpoints that subscribe to them, never to the endpoint they are about, never to a `*` subscriber, and
 * a failure delivering one never raises another (ops endpoints that themselves fail).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import type { RelayEvent } from '../lib/events.js';
import { deliveryDeadDataSchema, endpointEventDataSchema, isOperationalEvent } from '../plugins/webhooks/operational.js';
import { DIALECTS } from './helpers/db.js';
import { metricEvent } from './helpers/relay.js';
import { eventually, startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';
import { FAST, webhookFixture } from './helpers/webhooks.js';
import type { WebhookFixture } from './helpers/webhooks.js';

const OPS = ['endpoint.*', 'delivery.dead'];
const circuit = { failureThreshold: 2, cooldownMs: 50, maxCooldownMs: 200 };

describe.each(DIALECTS)('operational events (%s)', (dialect) => {
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

  const setup = async () => {
    f = await webhookFixture(dialect, { plugin: { ...FAST, circuit } });
    const raised: RelayEvent[] = [];
    f.relay.events.on('operational', (e) => raised.push(e));
    const add = async (url: string, events: string[]) => {
      const r = await f.api('POST', '/webhooks', { url, events });
      expect(r.status, r.text).toBe(201);
      return { id: r.body.id as string, secret: r.body.secret as string };
    };
    const counted = async (type: string) =>
      (await f.relay.metrics.operational.get()).values.find((v) => v.labels.type === type)?.value ?? 0;
    return { raised, add, counted };
  };

  it('a 410 raises endpoint.disabled and delivery.dead: delivered signed to the ops endpoint only, counted and logged', async () => {
    const { raised, add, counted } = await setup();
    const [gone, ops, all] = [await sink(), await sink(), await sink()];
    gone.respond(() => ({ status: 410 }));
    const n = await add(gone.url, ['metric.*']);
    const o = await add(ops.url, OPS);
    await add(all.url, ['*']);
    const event = metricEvent();
    await f.relay.publish(event);

    await ops.waitFor(2);
    const bodies = ops.requests.map((r) => JSON.parse(r.body) as { type: string; data: Record<string, unknown> });
    const disabled = bodies.find((b) => b.type === 'endpoint.disabled')!;
    const dead = bodies.find((b) => b.type === 'delivery.dead')!;
    expect(endpointEventDataSchema.parse(disabled.data)).toEqual({
      endpoint_id: n.id,
      url: `${gone.url}/`,
      reason: 'the receiver answered 410 Gone',
    });
    expect(deliveryDeadDataSchema.parse(dead.data)).toMatchObject({
      target: 'webhooks',
      endpoint_id: n.id,
      event_id: event.id,
      event_type: 'metric.submitted',
      attempts: 1,
      last_error: 'HTTP 410',
    });
    const wh = new StandardWebhook(o.secret);
    for (const req of ops.requests) expect(() => wh.verify(req.body, req.headers as Record<string, string>)).not.toThrow();

    expect(raised.map((e) => e.type).sort()).toEqual(['delivery.dead', 'endpoint.disabled']);
    expect(await counted('endpoint.disabled')).toBe(1);
    expect(await counted('delivery.dead')).toBe(1);
    expect(f.logs.some((l) => l.includes('endpoint.disabled') && l.includes(n.id))).toBe(true);
    // The `*` subscriber got the metric only; the endpoint the events are about got nothing more.
    await all.waitFor(1);
    expect(all.requests.map((r) => JSON.parse(r.body).type)).toEqual(['metric.submitted']);
    expect(gone.requests).toHaveLength(1);
    await eventually(async () => (await f.relay.listDeliveries({ webhookId: o.id })).data.every((d) => d.status === 'succeeded'));
    expect((await f.relay.listDeliveries({ webhookId: o.id })).data).toHaveLength(2);
  });

  it("an endpoint's circuit opening raises endpoint.failing once, and its recovery endpoint.recovered", async () => {
    const { raised, add, counted } = await setup();
    const [flaky, ops] = [await sink(), await sink()];
    flaky.respond((_req, i) => (i < 3 ? { status: 503 } : { status: 204 }));
    const n = await add(flaky.url, ['metric.*']);
    await add(ops.url, OPS);
    await f.relay.publish(metricEvent());

    await ops.waitFor(2);
    const types = ops.requests.map((r) => JSON.parse(r.body) as { type: string; data: { endpoint_id: string; reason: string } });
    expect(types.map((t) => t.type)).toEqual(['endpoint.failing', 'endpoint.recovered']);
    expect(types.every((t) => t.data.endpoint_id === n.id)).toBe(true);
    expect(raised.map((e) => e.type)).toEqual(['endpoint.failing', 'endpoint.recovered']);
    expect(await counted('endpoint.failing')).toBe(1);
    expect(await counted('endpoint.recovered')).toBe(1);
    // The delivery itself got through: no delivery.dead.
    await eventually(async () => (await f.relay.listDeliveries({ webhookId: n.id })).data[0]?.status === 'succeeded');
  });

  it('ops endpoints that themselves fail raise nothing more (no loops), and an event never goes to the endpoint it is about', async () => {
    const { raised, add } = await setup();
    const [gone, opsDown, opsGone] = [await sink(), await sink(), await sink()];
    gone.respond(() => ({ status: 410 }));
    opsDown.respond(() => ({ status: 500 }));
    opsGone.respond(() => ({ status: 410 }));
    const n = await add(gone.url, ['metric.*', ...OPS]);
    const down = await add(opsDown.url, OPS);
    const dead = await add(opsGone.url, OPS);
    await f.relay.publish(metricEvent());

    // opsGone answers 410 to its first operational event: it is disabled and that delivery is dead.
    await eventually(async () => (await f.webhooks.get(dead.id))?.enabled === false);
    // opsDown fails twice (its circuit opens) and keeps failing its probes: several rounds go by.
    await opsDown.waitFor(5);
    await eventually(() => f.relay.dispatcher.circuits.state(`webhooks:${down.id}`) !== 'closed');

    // Only the two events about `gone` were ever raised: none about the ops endpoints, none for their failures.
    expect(raised.map((e) => `${e.type} ${(e.data as { endpoint_id: string }).endpoint_id}`).sort()).toEqual([
      `delivery.dead ${n.id}`,
      `endpoint.disabled ${n.id}`,
    ]);
    expect(raised.every((e) => !isOperationalEvent(String((e.data as { event_type?: string }).event_type ?? '')))).toBe(true);
    // `gone` subscribes to operational events too, but never receives one about itself.
    expect(gone.requests.map((r) => JSON.parse(r.body).type)).toEqual(['metric.submitted']);
    expect(f.logs.some((l) => l.includes('endpoint.failing'))).toBe(false);
  });

  it('subscriptions to operational events are validated like any other', async () => {
    f = await webhookFixture(dialect, { paused: true });
    expect((await f.api('POST', '/webhooks', { url: 'http://127.0.0.1:9/', events: OPS })).status).toBe(201);
    expect((await f.api('POST', '/webhooks', { url: 'http://127.0.0.1:9/', events: ['endpoint.disabled'] })).status).toBe(201);
    const bad = await f.api('POST', '/webhooks', { url: 'http://127.0.0.1:9/', events: ['endpoint.exploded'] });
    expect(bad.status).toBe(422);
    expect(bad.body.errors[0]).toMatchObject({
      path: 'events[0]',
      message: expect.stringMatching(/unknown event type endpoint\.exploded/),
    });
  });
});
