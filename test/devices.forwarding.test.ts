/**
 * Forwarding from the devices host to a mentor stand-in (a real HTTP sink): the seed's routes and record
 * shapes with the stored record ids, toggles, standalone mode, signed commands, request-id propagation,
 * non-blocking ingestion, and reconcile.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { republish } from '../hosts/devices/reconcile.js';
import { generateSecret, signHeaders } from '../lib/signing.js';
import { DIALECTS } from './helpers/db.js';
import { eventually } from './helpers/sink.js';
import { expectProblem, imageForm, PNG, startDevices } from './devices.fixture.js';
import type { DevicesFixture } from './devices.fixture.js';

type Rec = Record<string, unknown>;

/** Every record the sink received on `path` (batched arrays flattened). */
function received(f: DevicesFixture, path: string): Rec[] {
  return f
    .sink!.requests.filter((r) => r.path === path)
    .flatMap((r) => {
      const body = JSON.parse(r.body) as Rec | Rec[];
      return Array.isArray(body) ? body : [body];
    });
}

const ids = (records: Rec[], key: string) => records.map((r) => String(r[key])).sort();

describe.each(DIALECTS)('forwarding to the mentor (%s)', (dialect) => {
  let f: DevicesFixture | undefined;
  afterEach(async () => {
    await f?.cleanup();
    f = undefined;
  });

  async function ingestEverything(fx: DevicesFixture) {
    await fx.call('POST', '/devices/register', { deviceid: 'dev-1', device_name: 'Laptop' });
    await fx.call('POST', '/devices/dev-1/metrics', { cpu_usage: 42 }, { headers: { 'x-request-id': 'req-metrics-1' } });
    await fx.call('POST', '/devices/dev-1/activities', [{ activity_type: 'a' }, { activity_type: 'b' }]);
    await fx.call('POST', '/devices/dev-1/alerts', [{ level: 'warning', alert_type: 'disk' }]);
    await fx.call('POST', '/devices/dev-1/processes', [
      { pid: 1, process_name: 'init' },
      { pid: 2, process_name: 'sh' },
    ]);
    expect((await fx.call('POST', '/devices/dev-1/screenshots', imageForm(PNG))).status).toBe(201);
    await fx.call('POST', '/devices/dev-1/commands', { commandid: 'cmd-1', command_text: 'status' });
    await fx.call('POST', '/devices/commands/cmd-1/result', { status: 'completed', result: 'ok', exit_code: 0 });
  }

  it('forwards every type to its mentor route with the stored record ids', async () => {
    f = await startDevices(dialect, { mentor: true });
    await ingestEverything(f);
    const fx = f;
    await eventually(async () => (await fx.count('relay_deliveries', "status = 'succeeded'")) === 8);
    expect(await f.count('relay_deliveries')).toBe(8);

    expect(received(f, '/devices/register')).toEqual([
      expect.objectContaining({ deviceid: 'dev-1', device_name: 'Laptop', is_online: true }),
    ]);
    const metrics = (await f.call('GET', '/devices/dev-1/metrics')).json as Rec[];
    expect(received(f, '/devices/metrics')).toEqual(metrics);
    expect(ids(received(f, '/devices/activity'), 'activityid')).toEqual(
      ids((await f.call('GET', '/devices/dev-1/activities')).json, 'activityid'),
    );
    expect(ids(received(f, '/devices/alerts'), 'alertid')).toEqual(ids((await f.call('GET', '/devices/dev-1/alerts')).json, 'alertid'));
    const shots = (await f.call('GET', '/devices/dev-1/screenshots')).json as Rec[];
    // An uploaded screenshot travels with its image, so the mentor can serve it.
    expect(received(f, '/devices/screenshots')).toEqual(shots.map((s) => ({ ...s, image_base64: PNG.toString('base64') })));
    const procs = received(f, '/devices/processes');
    expect(procs.map((p) => [p.pid, p.process_name, p.deviceid])).toEqual([
      [1, 'init', 'dev-1'],
      [2, 'sh', 'dev-1'],
    ]);
    expect(typeof procs[0]!.snapshot_at).toBe('string');
    expect(received(f, '/commands/status')).toEqual([
      expect.objectContaining({ commandid: 'cmd-1', deviceid: 'dev-1', status: 'completed', result: 'ok', exit_code: 0 }),
    ]);

    const metricReq = f.sink!.requests.find((r) => r.path === '/devices/metrics')!;
    expect(metricReq.headers['x-request-id']).toBe('req-metrics-1');
    expect(metricReq.headers['idempotency-key']).toMatch(/^evt_/);
  });

  it('answers the device without waiting for the mentor', async () => {
    f = await startDevices(dialect, { mentor: true });
    f.sink!.respond(() => 'hang');
    await f.call('POST', '/devices/register', { deviceid: 'dev-1' });
    const r = await f.call('POST', '/devices/dev-1/metrics', { cpu_usage: 1 });
    expect(r.status).toBe(200);
    // The mentor has not answered anything, yet both records are stored and their deliveries still open.
    expect(await f.count('relay_deliveries', "status = 'succeeded'")).toBe(0);
    expect(await f.count('metrics')).toBe(1);
    // Cut the hanging requests so shutdown need not wait for FORWARD_TIMEOUT.
    await f.sink!.close();
  });

  it('stores a request whole or not at all: when its deliveries cannot be written, its records are not stored', async () => {
    f = await startDevices(dialect, { mentor: true });
    await f.call('POST', '/devices/register', { deviceid: 'dev-1' });
    // A real database failure at the outbox write, injected with a trigger.
    if (dialect === 'sqlite') {
      await f.host.db.sequelize.query(
        "CREATE TRIGGER refuse_deliveries BEFORE INSERT ON relay_deliveries BEGIN SELECT RAISE(ABORT, 'outbox refused'); END",
      );
    } else {
      await f.host.db.sequelize.query(
        "CREATE FUNCTION refuse_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'outbox refused'; END $$",
      );
      await f.host.db.sequelize.query(
        'CREATE TRIGGER refuse_deliveries BEFORE INSERT ON relay_deliveries FOR EACH ROW EXECUTE FUNCTION refuse_deliveries()',
      );
    }
    expectProblem(await f.call('POST', '/devices/dev-1/metrics', { cpu_usage: 1 }), 500);
    expectProblem(await f.call('POST', '/devices/dev-1/activities', [{ activity_type: 'a' }, { activity_type: 'b' }]), 500);
    expectProblem(await f.call('POST', '/devices/dev-1/processes', [{ pid: 1, process_name: 'init' }]), 500);
    expect(await f.count('metrics')).toBe(0);
    expect(await f.count('activities')).toBe(0);
    expect(await f.count('processes')).toBe(0);
    expect(await f.count('relay_events')).toBe(1);
  });

  it('FORWARD_PROCESSES=false stores processes but enqueues no delivery for them', async () => {
    f = await startDevices(dialect, { mentor: true, env: { FORWARD_PROCESSES: 'false' } });
    await f.call('POST', '/devices/register', { deviceid: 'dev-1' });
    expect((await f.call('POST', '/devices/dev-1/processes', [{ pid: 1, process_name: 'init' }])).status).toBe(200);
    await f.call('POST', '/devices/dev-1/metrics', { cpu_usage: 1 });
    expect(await f.count('processes')).toBe(1);
    expect(await f.count('relay_deliveries', "event_type = 'process.snapshot'")).toBe(0);
    expect(await f.count('relay_deliveries', "event_type = 'metric.submitted'")).toBe(1);
  });

  it('standalone (no MENTOR_API_URL) stores everything and enqueues nothing', async () => {
    f = await startDevices(dialect, { mentor: false });
    await f.call('POST', '/devices/register', { deviceid: 'dev-1' });
    await f.call('POST', '/devices/dev-1/metrics', { cpu_usage: 1 });
    await f.call('POST', '/devices/dev-1/alerts', [{ level: 'info', alert_type: 'x' }]);
    expect(await f.count('metrics')).toBe(1);
    expect(await f.count('alerts')).toBe(1);
    expect(await f.count('relay_deliveries')).toBe(0);
    expect(await republish(f.host.db, f.host.relay)).toBe(0);
  });

  it('with MENTOR_SIGNING_SECRET, signs forwards and accepts only signed commands', async () => {
    const secret = generateSecret();
    f = await startDevices(dialect, { mentor: true, env: { MENTOR_SIGNING_SECRET: secret } });
    await f.call('POST', '/devices/register', { deviceid: 'dev-1' });
    const fx = f;
    await fx.sink!.waitFor(1);
    expect(fx.sink!.requests[0]!.headers['webhook-signature']).toMatch(/^v1,/);

    const body = JSON.stringify({ commandid: 'cmd-1', deviceid: 'dev-1', command_text: 'status' });
    const unsigned = await f.call('POST', '/devices/dev-1/commands', body, { headers: { 'content-type': 'application/json' } });
    expectProblem(unsigned, 401);
    // The same middleware as the mentor's: the challenge names the scheme.
    expect(unsigned.headers.get('www-authenticate')).toBe('Webhook');
    const forged = signHeaders({ id: 'msg_1', body, secret: generateSecret() });
    expectProblem(
      await f.call('POST', '/devices/dev-1/commands', body, { headers: { 'content-type': 'application/json', ...forged } }),
      401,
    );
    const tampered = signHeaders({ id: 'msg_1', body, secret });
    expectProblem(
      await f.call('POST', '/devices/dev-1/commands', body.replace('status', 'restart'), {
        headers: { 'content-type': 'application/json', ...tampered },
      }),
      401,
    );
    expect(await f.count('commands')).toBe(0);

    const good = signHeaders({ id: 'msg_1', body, secret });
    const ok = await f.call('POST', '/devices/dev-1/commands', body, { headers: { 'content-type': 'application/json', ...good } });
    expect(ok.json).toMatchObject({ status: 'pending', commandid: 'cmd-1', created: true });
    const again = await f.call('POST', '/devices/dev-1/commands', body, {
      headers: { 'content-type': 'application/json', ...signHeaders({ id: 'msg_2', body, secret }) },
    });
    expect(again.json).toMatchObject({ created: false });
    expect(await f.count('commands')).toBe(1);
  });

  it('reconcile re-publishes the window to the mentor with the same record ids and the original event ids', async () => {
    f = await startDevices(dialect, { mentor: true });
    await ingestEverything(f);
    const fx = f;
    await eventually(async () => (await fx.count('relay_deliveries', "status = 'succeeded'")) === 8);
    const firstKeys = new Set(f.sink!.requests.map((r) => r.headers['idempotency-key']));
    const before = f.sink!.requests.length;
    const firstMetricIds = ids(received(f, '/devices/metrics'), 'metricid');
    const firstActivityIds = ids(received(f, '/devices/activity'), 'activityid');

    // 1 device, 1 metric, 2 activities, 1 alert, 1 snapshot, 1 screenshot, 1 command result.
    expect(await republish(f.host.db, f.host.relay, { since: new Date(Date.now() - 60_000) })).toBe(8);
    await eventually(async () => (await fx.count('relay_deliveries', "status = 'succeeded'")) === 16);
    // Each record goes out again as its original event: receivers de-duplicate on Idempotency-Key / webhook-id.
    const later = f.sink!.requests.slice(before);
    expect(new Set(later.map((r) => r.headers['idempotency-key']))).toEqual(firstKeys);
    for (const r of later) expect(r.headers['webhook-id'] ?? r.headers['idempotency-key']).toBe(r.headers['idempotency-key']);
    expect(later.length).toBe(before);
    expect(ids(received(f, '/devices/metrics'), 'metricid')).toEqual([...firstMetricIds, ...firstMetricIds].sort());
    expect(ids(received(f, '/devices/activity'), 'activityid')).toEqual([...firstActivityIds, ...firstActivityIds].sort());

    expect(await republish(f.host.db, f.host.relay, { types: ['metric.submitted', 'process.snapshot'] })).toBe(2);
    expect(await republish(f.host.db, f.host.relay, { since: Date.now() + 60_000 })).toBe(0);
    expect(await republish(f.host.db, f.host.relay, { types: ['activity.*'] })).toBe(2);
    await expect(republish(f.host.db, f.host.relay, { types: ['metric.submitted', 'nope.nope'] })).rejects.toMatchObject({
      status: 422,
      errors: [{ path: 'types[1]' }],
    });
    await expect(republish(f.host.db, f.host.relay, { since: 'yesterday' })).rejects.toMatchObject({ status: 422 });
  });
});
