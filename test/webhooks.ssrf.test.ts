import { afterEach, describe, expect, it } from 'vitest';
import type { Resolver } from '../plugins/webhooks/ssrf.js';
import { createRelay } from '../lib/relay.js';
import { webhooksTarget } from '../plugins/webhooks/index.js';
import { DIALECTS } from './helpers/db.js';
import { metricEvent } from './helpers/relay.js';
import { eventually, startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';
import { FAST, register, webhookFixture } from './helpers/webhooks.js';
import type { WebhookFixture } from './helpers/webhooks.js';

const STRICT = { allowPrivateNetworks: false, allowedHosts: [] };

/** First delivery of the endpoint, once it has at least one attempt. */
async function firstAttempt(f: WebhookFixture, webhookId: string) {
  return eventually(async () => {
    const [d] = (await f.relay.listDeliveries({ webhookId })).data;
    if (!d) return null;
    const full = await f.api('GET', `/deliveries/${d.id}`);
    return full.body.attempts_log.length > 0 ? full.body : null;
  });
}

describe.each(DIALECTS)('webhook SSRF guard (%s)', (dialect) => {
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

  it('refuses every private address class at registration with a 422 naming the url', async () => {
    const resolve: Resolver = async (host) => [{ address: host === 'rebind.test' ? '10.0.0.7' : '93.184.216.34', family: 4 }];
    f = await webhookFixture(dialect, { plugin: { ...STRICT, resolve } });
    const urls = [
      'http://127.0.0.1:8080/',
      'http://10.0.0.1/',
      'http://172.16.0.1/',
      'http://192.168.0.10/',
      'http://169.254.169.254/latest/meta-data/',
      'http://169.254.1.1/',
      'http://100.64.0.1/',
      'http://[::1]/',
      'http://[fd00::1]/',
      'http://[fe80::1]/',
      'http://[::ffff:127.0.0.1]/',
      'http://0.0.0.0/',
      'http://metadata.google.internal/',
      'http://rebind.test/',
      'gopher://example.test/',
    ];
    for (const url of urls) {
      const r = await f.api('POST', '/webhooks', { url, events: ['*'] });
      expect(r.status, url).toBe(422);
      expect(r.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(r.body.errors[0].path).toBe('url');
    }
    expect((await f.api('GET', '/webhooks')).body.data).toEqual([]);
    // A changed URL is checked the same way.
    const ok = await f.api('POST', '/webhooks', { url: 'https://hooks.example.test/', events: ['*'] });
    expect(ok.status).toBe(201);
    expect((await f.api('PATCH', `/webhooks/${ok.body.id}`, { url: 'http://10.0.0.1/' })).status).toBe(422);
  });

  it('refuses at connect time a hostname that resolved to a public address at registration and to 127.0.0.1 now', async () => {
    const s = await sink();
    let answer = '93.184.216.34';
    const resolve: Resolver = async () => [{ address: answer, family: 4 }];
    f = await webhookFixture(dialect, { plugin: { ...STRICT, resolve } });
    const { id } = await register(f, `http://rebind.test:${s.port}/hook`);
    answer = '127.0.0.1';
    await f.relay.publish(metricEvent());
    const d = await firstAttempt(f, id);
    expect(d.attempts_log[0].status_code).toBeNull();
    expect(d.attempts_log[0].error).toMatch(/ERR_WEBHOOK_ADDRESS_REFUSED.*rebind.test resolves to 127\.0\.0\.1.*loopback/);
    expect(s.requests).toHaveLength(0);
  });

  it('refuses at connect time a literal private address stored while the policy allowed it', async () => {
    const s = await sink();
    f = await webhookFixture(dialect, { plugin: STRICT, paused: true });
    // Another process with a looser policy registered it (same database).
    const loose = webhooksTarget({ db: f.fx.tdb.db, ...FAST });
    const { endpoint } = await loose.create({ url: s.url, events: ['*'] });
    await loose.close?.();
    f.webhooks.invalidate();
    await f.relay.start();
    await f.relay.publish(metricEvent());
    const d = await firstAttempt(f, endpoint.id);
    expect(d.attempts_log[0].error).toMatch(/refused to connect: 127\.0\.0\.1 is not a public address \(loopback\)/);
    expect(s.requests).toHaveLength(0);
  });

  it('never follows a redirect, not even to another local receiver', async () => {
    const [redirecting, inner] = [await sink(), await sink()];
    redirecting.respond(() => ({ status: 302, headers: { location: `${inner.url}/internal` } }));
    f = await webhookFixture(dialect);
    const { id } = await register(f, redirecting.url);
    await f.relay.publish(metricEvent());
    const d = await firstAttempt(f, id);
    expect(d.attempts_log[0]).toMatchObject({ status_code: 302, outcome: 'retry' });
    await eventually(async () => redirecting.requests.length >= 2);
    expect(inner.requests).toHaveLength(0);
  });

  it('delivers to a private address allowed by allowedHosts', async () => {
    const s = await sink();
    f = await webhookFixture(dialect, { plugin: { allowPrivateNetworks: false, allowedHosts: ['127.0.0.1'] } });
    await register(f, `${s.url}/ok`);
    expect((await f.api('POST', '/webhooks', { url: 'http://10.0.0.1/', events: ['*'] })).status).toBe(422);
    await f.relay.publish(metricEvent());
    await s.waitFor(1);
    expect(s.requests[0]!.path).toBe('/ok');
  });

  it('createRelay applies the webhook migration once, however many processes share the database', async () => {
    f = await webhookFixture(dialect, { paused: true });
    const again = await createRelay({ db: f.fx.tdb.db, targets: [webhooksTarget({ db: f.fx.tdb.db, ...FAST })] });
    await again.stop();
    expect((await f.api('GET', '/webhooks')).status).toBe(200);
  });
});
