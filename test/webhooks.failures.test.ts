import { afterEach, describe, expect, it } from 'vitest';
import { openDatabase } from '../lib/db.js';
import { runMigrations } from '../lib/migrate.js';
import { mentorTarget } from '../plugins/mentor.js';
import { webhooksTarget } from '../plugins/webhooks/index.js';
import { createPgDatabase, DIALECTS } from './helpers/db.js';
import { metricEvent } from './helpers/relay.js';
import { eventually, startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';
import { register, webhookFixture } from './helpers/webhooks.js';
import type { WebhookFixture } from './helpers/webhooks.js';

describe.each(DIALECTS)('webhook failures (%s)', (dialect) => {
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

  it('one hanging endpoint delays neither the other endpoints nor the mentor', async () => {
    const mentor = await sink();
    const [slow, a, b] = [await sink(), await sink(), await sink()];
    slow.respond(() => 'hang');
    // The request timeout is far longer than the test: everything below happens while `slow` still hangs.
    f = await webhookFixture(dialect, {
      plugin: { concurrency: 2 },
      targets: [mentorTarget({ url: mentor.url, backoffBaseMs: 50 })],
      dispatcher: { requestTimeoutMs: 120_000 },
    });
    const hung = await register(f, slow.url);
    await register(f, a.url, ['metric.*']);
    await register(f, b.url, ['metric.submitted']);
    const events = Array.from({ length: 6 }, () => metricEvent('dev-fan'));
    for (const e of events) await f.relay.publish(e);
    await a.waitFor(6);
    await b.waitFor(6);
    await eventually(async () => (await f.relay.listDeliveries({ target: 'mentor', status: 'succeeded' })).data.length === 6);
    const mentorIds = mentor.requests.flatMap((r) => {
      const body = JSON.parse(r.body) as { metricid: string } | Array<{ metricid: string }>;
      return (Array.isArray(body) ? body : [body]).map((m) => m.metricid);
    });
    expect(new Set(mentorIds)).toEqual(new Set(events.map((e) => e.data.metricid)));
    // The slow endpoint has exactly its concurrency of requests out; the rest of its deliveries wait (leased
    // in this dispatcher's queue or pending), none finished and none dead.
    expect(slow.requests).toHaveLength(2);
    const slowLog = await f.relay.listDeliveries({ webhookId: hung.id });
    expect(slowLog.data).toHaveLength(6);
    expect(slowLog.data.every((d) => d.status === 'inflight' || d.status === 'pending')).toBe(true);
  });

  it('410 Gone disables the endpoint at once and dead-letters its deliveries', async () => {
    f = await webhookFixture(dialect);
    const gone = await sink();
    gone.respond(() => ({ status: 410, body: 'gone' }));
    const { id } = await register(f, gone.url);
    await f.relay.publish(metricEvent());
    await gone.waitFor(1);
    const ep = await eventually(async () => {
      const r = await f.api('GET', `/webhooks/${id}`);
      return r.body.enabled === false ? r.body : null;
    });
    expect(ep.disabled_reason).toMatch(/410/);
    // The attempt's result is written with the next flush (within flushIntervalMs).
    const d = await eventually(async () => (await f.relay.listDeliveries({ webhookId: id, status: 'dead' })).data[0]);
    expect(d.attempts).toBe(1);
    // A disabled endpoint is no longer routed to.
    await f.relay.publish(metricEvent());
    expect((await f.relay.listDeliveries({ webhookId: id })).data).toHaveLength(1);
    expect(gone.requests).toHaveLength(1);
    // Re-enabling clears the reason.
    const back = await f.api('PATCH', `/webhooks/${id}`, { enabled: true });
    expect(back.body).toMatchObject({ enabled: true, disabled_reason: null, failing_since: null });
  });

  it('disables an endpoint that keeps failing for disableAfterMs, then dead-letters what is pending', async () => {
    f = await webhookFixture(dialect, { plugin: { disableAfterMs: 300, schedule: Array(200).fill(20) } });
    const down = await sink();
    down.respond(() => ({ status: 500, body: 'down' }));
    const { id } = await register(f, down.url);
    await f.relay.publish([metricEvent(), metricEvent()]);
    const ep = await eventually(async () => {
      const r = await f.api('GET', `/webhooks/${id}`);
      return r.body.enabled === false ? r.body : null;
    });
    expect(ep.disabled_reason).toMatch(/failing without a success since .* \(WEBHOOK_DISABLE_AFTER\)/);
    expect(ep.failing_since).not.toBeNull();
    expect(Date.parse(ep.updated_at) - Date.parse(ep.failing_since)).toBeGreaterThanOrEqual(300);
    await eventually(async () => (await f.relay.listDeliveries({ webhookId: id, status: 'dead' })).data.length === 2);
    const [d] = (await f.relay.listDeliveries({ webhookId: id })).data;
    expect(d!.last_error).toMatch(/HTTP 500|disabled/);
  });

  it('a success ends the failure run, so intermittent failures never disable', async () => {
    f = await webhookFixture(dialect, { plugin: { disableAfterMs: 60_000 } });
    const flaky = await sink();
    let healthy = false;
    flaky.respond(() => (healthy ? { status: 200 } : { status: 503 }));
    const { id } = await register(f, flaky.url);
    await f.relay.publish(metricEvent());
    await eventually(async () => (await f.api('GET', `/webhooks/${id}`)).body.failing_since !== null);
    healthy = true;
    await eventually(async () => (await f.relay.listDeliveries({ webhookId: id, status: 'succeeded' })).data.length === 1);
    await eventually(async () => (await f.api('GET', `/webhooks/${id}`)).body.failing_since === null);
    expect((await f.api('GET', `/webhooks/${id}`)).body.enabled).toBe(true);
  });

  it("a deleted endpoint's pending deliveries become dead with the reason", async () => {
    f = await webhookFixture(dialect, { paused: true });
    const s = await sink();
    const { id } = await register(f, s.url);
    await f.relay.publish([metricEvent(), metricEvent()]);
    expect((await f.api('DELETE', `/webhooks/${id}`)).status).toBe(204);
    const log = await f.relay.listDeliveries({ webhookId: id });
    expect(log.data.map((d) => [d.status, d.last_error])).toEqual([
      ['dead', 'webhook endpoint was deleted'],
      ['dead', 'webhook endpoint was deleted'],
    ]);
    await f.relay.start();
    // A retried delivery of a deleted endpoint fails with a message that says why, and reaches nobody.
    await f.api('POST', `/deliveries/${log.data[0]!.id}/retry`);
    const d = await eventually(async () => {
      const r = await f.api('GET', `/deliveries/${log.data[0]!.id}`);
      return r.body.attempts_log.length > 0 ? r.body : null;
    });
    expect(d.attempts_log[0].error).toMatch(/was deleted/);
    expect(s.requests).toHaveLength(0);
  });

  it('opens a circuit for a failing endpoint alone; the other endpoint keeps receiving', async () => {
    f = await webhookFixture(dialect, {
      plugin: { schedule: Array(50).fill(20), circuit: { failureThreshold: 2, cooldownMs: 60_000, maxCooldownMs: 60_000 } },
    });
    const opened: string[] = [];
    f.relay.events.on('circuit:open', (t) => opened.push(t.key));
    const [down, up] = [await sink(), await sink()];
    down.respond(() => ({ status: 503 }));
    const bad = await register(f, down.url);
    await register(f, up.url);
    await f.relay.publish([metricEvent(), metricEvent(), metricEvent()]);
    await eventually(() => opened.includes(`webhooks:${bad.id}`));
    await up.waitFor(3);
    const before = down.requests.length;
    await f.relay.publish([metricEvent(), metricEvent()]);
    await up.waitFor(5);
    // While open, the failing endpoint gets nothing and spends no attempts.
    expect(down.requests.length).toBe(before);
    expect(opened).toEqual([`webhooks:${bad.id}`]);
    await eventually(async () => (await f.relay.listDeliveries({ webhookId: bad.id, status: 'pending' })).data.length === 5);
  });

  it("applies the plugin's own request timeout, shorter than the dispatcher's", async () => {
    f = await webhookFixture(dialect, { plugin: { requestTimeoutMs: 200 }, dispatcher: { requestTimeoutMs: 120_000 } });
    const slow = await sink();
    slow.respond(() => 'hang');
    const { id } = await register(f, slow.url);
    await f.relay.publish(metricEvent());
    const attempt = await eventually(async () => {
      const [row] = (await f.relay.listDeliveries({ webhookId: id })).data;
      return row ? (await f.relay.getDelivery(row.id))?.attempts_log[0] : undefined;
    });
    expect(attempt).toMatchObject({ number: 1, status_code: null, outcome: 'retry' });
    expect(attempt.error).toMatch(/timeout/i);
  });
});

describe('webhook endpoint snapshot and the connection pool (postgres)', () => {
  it('a publish inside a transaction never waits for a snapshot load that is queued for a pool connection', async () => {
    const pgdb = await createPgDatabase();
    const setup = openDatabase(pgdb.url);
    const registered = webhooksTarget({ db: setup, allowPrivateNetworks: true });
    await runMigrations(setup, registered.migrations!, 'relay_webhooks_migrations');
    const { endpoint } = await registered.create({ url: 'http://127.0.0.1:9/hook', events: ['metric.*'] });
    await setup.close();
    // One connection: the transaction below holds it, so any load outside it must wait for the commit.
    const db = openDatabase(pgdb.url, { pool: { max: 1, min: 0, idle: 1000, acquire: 10_000 } });
    try {
      const plugin = webhooksTarget({ db, allowPrivateNetworks: true, cacheTtlMs: 60_000 });
      const event = metricEvent();
      let outside: Promise<unknown> | undefined;
      const routed = await db.transaction(async (t) => {
        await db.sequelize.query('SELECT 1', { transaction: t });
        // As the dispatcher does: build a request, which loads the snapshot without a transaction. It is
        // queued for the pool's only connection, held by this transaction.
        outside = Promise.resolve(plugin.prepare([event], { endpointId: endpoint.id }));
        const timeout = new Promise<'waited'>((r) => setTimeout(() => r('waited'), 5_000));
        return Promise.race([plugin.route(event, { transaction: t }), timeout]);
      });
      expect(routed).toEqual([{ endpointId: endpoint.id }]);
      // And the load outside completes once the transaction has committed.
      await expect(outside).resolves.toMatchObject({ url: 'http://127.0.0.1:9/hook' });
    } finally {
      await db.close();
      await pgdb.drop();
    }
  });
});
