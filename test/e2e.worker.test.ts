/**
 * `raqeem-relay worker` and `raqeem-relay reconcile` against the devices host's database, with real
 * processes: a worker alone drains an outbox its host left behind, and reconcile re-publishes stored
 * records that the mentor answers as duplicates (stored once).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DIALECTS } from './helpers/db.js';
import { http, startPair } from './helpers/e2e.js';
import type { Pair } from './helpers/e2e.js';
import { killAll, runCli, spawnCli } from './helpers/processes.js';
import { eventually } from './helpers/sink.js';

type Rec = Record<string, unknown>;

describe.each(DIALECTS)('worker and reconcile (%s)', (dialect) => {
  let pair: Pair | undefined;
  afterEach(async () => {
    await pair?.close();
    pair = undefined;
    await killAll();
  });

  it('a worker alone delivers what the stopped devices host had queued', async () => {
    pair = await startPair(dialect, { startMentor: false });
    const p = pair;
    await http('POST', `${p.devicesUrl}/api/v1/devices/register`, { deviceid: 'dev-w' });
    for (let i = 0; i < 20; i++)
      expect((await http('POST', `${p.devicesUrl}/api/v1/devices/dev-w/metrics`, { cpu_usage: i })).status).toBe(200);
    const ids = ((await http('GET', `${p.devicesUrl}/api/v1/devices/dev-w/metrics?limit=100`)).body as Rec[]).map((r) => r.metricid).sort();
    expect(await p.devices.stop()).toBe(0);

    await p.startMentor();
    const worker = spawnCli(['worker'], p.devicesEnv);
    const central = await eventually(
      async () => {
        const rows = (await http('GET', `${p.mentorUrl}/devices/dev-w/metrics?limit=100`)).body as Rec[];
        return rows.length >= ids.length ? rows : null;
      },
      60_000,
      100,
    );
    expect(central.map((r) => r.metricid).sort()).toEqual(ids);
    // The registration travels in its own request and may land after the metrics.
    await eventually(async () => (await http('GET', `${p.mentorUrl}/devices/dev-w`)).status === 200, 30_000, 100);
    worker.child.kill('SIGTERM');
    expect(await worker.exited).toBe(0);
  });

  it('reconcile re-publishes stored records; the mentor keeps one copy of each', async () => {
    pair = await startPair(dialect);
    const p = pair;
    const auth = { authorization: `Bearer ${p.adminToken}` };
    await http('POST', `${p.devicesUrl}/api/v1/devices/register`, { deviceid: 'dev-r' });
    for (let i = 0; i < 5; i++) await http('POST', `${p.devicesUrl}/api/v1/devices/dev-r/metrics`, { cpu_usage: i });
    const metricDeliveries = async () =>
      (await http('GET', `${p.devicesUrl}/api/v1/deliveries?limit=1000&event_type=metric.submitted`, undefined, auth)).body.data as Rec[];
    await eventually(async () => (await metricDeliveries()).filter((r) => r.status === 'succeeded').length === 5);

    const since = new Date(Date.now() - 3600_000).toISOString();
    const run = await runCli(['reconcile', '--since', since, '--types', 'metric.submitted'], p.devicesEnv);
    expect(run.code).toBe(0);
    expect(run.output).toContain('republished 5 records');

    // Five new deliveries, delivered by the running host, answered 200 as duplicates.
    await eventually(
      async () => {
        const rows = await metricDeliveries();
        return rows.length === 10 && rows.every((r) => r.status === 'succeeded');
      },
      60_000,
      100,
    );
    const central = (await http('GET', `${p.mentorUrl}/devices/dev-r/metrics?limit=100`)).body as Rec[];
    expect(central).toHaveLength(5);
    expect(new Set(central.map((r) => r.metricid)).size).toBe(5);
  });
});
