/**
 * Forwarding modes with the real CLI processes: standalone (no MENTOR_API_URL: stored, nothing forwarded)
 * and a `FORWARD_*` toggle that is off (stored, that type not forwarded, the others still are). The delivery
 * log is the deterministic witness: deliveries are written in the same transaction as the record.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DIALECTS } from './helpers/db.js';
import { http, startPair } from './helpers/e2e.js';
import type { Pair } from './helpers/e2e.js';
import { killAll } from './helpers/processes.js';
import { eventually } from './helpers/sink.js';

type Rec = Record<string, unknown>;

describe.each(DIALECTS)('end to end forwarding modes (%s)', (dialect) => {
  let pair: Pair | undefined;
  afterEach(async () => {
    await pair?.close();
    pair = undefined;
    await killAll();
  });

  const deliveries = async (query = '') => {
    const r = await http('GET', `${pair!.devicesUrl}/api/v1/deliveries?limit=1000${query}`, undefined, {
      authorization: `Bearer ${pair!.adminToken}`,
    });
    expect(r.status).toBe(200);
    return r.body.data as Rec[];
  };

  it('stores everything and forwards nothing in standalone mode', async () => {
    pair = await startPair(dialect, { devicesEnv: { MENTOR_API_URL: '' } });
    const d = `${pair.devicesUrl}/api/v1/devices/solo`;
    expect((await http('POST', `${pair.devicesUrl}/api/v1/devices/register`, { deviceid: 'solo', device_name: 'Alone' })).status).toBe(200);
    expect((await http('POST', `${d}/metrics`, { cpu_usage: 5 })).status).toBe(200);
    expect((await http('POST', `${d}/activities`, [{ activity_type: 'idle', duration: 1 }])).status).toBe(200);
    expect((await http('POST', `${d}/processes`, [{ pid: 1, process_name: 'init' }])).status).toBe(200);
    expect((await http('POST', `${d}/alerts`, [{ level: 'info', alert_type: 'login' }])).status).toBe(200);

    expect((await http('GET', d)).body).toMatchObject({ deviceid: 'solo', device_name: 'Alone' });
    expect((await http('GET', `${d}/metrics`)).body).toHaveLength(1);
    expect((await http('GET', `${d}/processes`)).body).toHaveLength(1);
    expect(await deliveries()).toEqual([]);
    // The mentor is up and would accept; it never heard of the device.
    expect((await http('GET', `${pair.mentorUrl}/devices/solo`)).status).toBe(404);
    expect((await http('GET', `${pair.mentorUrl}/devices`)).body).toEqual([]);
  });

  it('FORWARD_PROCESSES=false stores snapshots locally and forwards every other type', async () => {
    pair = await startPair(dialect, { devicesEnv: { FORWARD_PROCESSES: 'false' } });
    const d = `${pair.devicesUrl}/api/v1/devices/no-procs`;
    await http('POST', `${pair.devicesUrl}/api/v1/devices/register`, { deviceid: 'no-procs' });
    expect((await http('POST', `${d}/processes`, [{ pid: 7, process_name: 'secret-tool' }])).body).toEqual({ inserted: 1 });
    expect((await http('POST', `${d}/metrics`, { cpu_usage: 50 })).status).toBe(200);

    expect((await http('GET', `${d}/processes`)).body).toEqual([expect.objectContaining({ pid: 7, process_name: 'secret-tool' })]);
    expect(await deliveries('&event_type=process.snapshot')).toEqual([]);
    const metricDeliveries = await deliveries('&event_type=metric.submitted');
    expect(metricDeliveries).toHaveLength(1);

    // The metric (published after the snapshot) arrives; the snapshot never had a delivery to arrive by.
    await eventually(async () => ((await http('GET', `${pair!.mentorUrl}/devices/no-procs/metrics`)).body as Rec[]).length === 1);
    expect((await http('GET', `${pair.mentorUrl}/devices/no-procs/processes`)).body).toEqual([]);
  });
});
