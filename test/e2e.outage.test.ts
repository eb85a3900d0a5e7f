/**
 * A mentor outage loses nothing: with the mentor down, 500 records are ingested (every ingest answers
 * 200 at once), then the mentor starts and every record arrives exactly once, with the same record ids.
 * Real CLI processes on loopback, signed forwards, FORWARD_BACKOFF_BASE=0.05 so the test does not wait on
 * the production backoff; the default FORWARD_MAX_RETRIES (3) is kept on purpose: an outage must not
 * spend a delivery's attempts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DIALECTS } from './helpers/db.js';
import { http, startPair } from './helpers/e2e.js';
import type { Pair } from './helpers/e2e.js';
import { killAll } from './helpers/processes.js';
import { eventually } from './helpers/sink.js';

type Rec = Record<string, unknown>;
const RECORDS = 500;
const PARALLEL = 10;

describe.each(DIALECTS)('end to end mentor outage (%s)', (dialect) => {
  let pair: Pair | undefined;
  afterEach(async () => {
    await pair?.close();
    pair = undefined;
    await killAll();
  });

  it('delivers all 500 records ingested while the mentor was down, exactly once', { timeout: 180_000 }, async () => {
    pair = await startPair(dialect, { startMentor: false });
    const p = pair;
    const d = `${p.devicesUrl}/api/v1/devices/dev-outage`;
    const auth = { authorization: `Bearer ${p.adminToken}` };
    expect((await http('POST', `${p.devicesUrl}/api/v1/devices/register`, { deviceid: 'dev-outage', device_name: 'Outage' })).status).toBe(
      200,
    );

    const statuses: number[] = [];
    for (let i = 0; i < RECORDS; i += PARALLEL) {
      const batch = Array.from({ length: Math.min(PARALLEL, RECORDS - i) }, (_, j) =>
        http('POST', `${d}/metrics`, { cpu_usage: (i + j) % 100, net_bytes_in: i + j }),
      );
      for (const r of await Promise.all(batch)) statuses.push(r.status);
    }
    expect(statuses).toHaveLength(RECORDS);
    expect(statuses.every((s) => s === 200)).toBe(true);

    const local = (await http('GET', `${d}/metrics?limit=1000`)).body as Rec[];
    expect(local).toHaveLength(RECORDS);
    // Nothing has been delivered, and the outage has not killed anything so far.
    const before = (await http('GET', `${p.devicesUrl}/api/v1/deliveries?limit=1000&status=succeeded`, undefined, auth)).body.data as Rec[];
    expect(before).toEqual([]);

    await p.startMentor();
    const central = await eventually(
      async () => {
        const rows = (await http('GET', `${p.mentorUrl}/devices/dev-outage/metrics?limit=1000`)).body as Rec[];
        return rows.length >= RECORDS ? rows : null;
      },
      120_000,
      250,
    );
    expect(central).toHaveLength(RECORDS);
    expect(central.map((r) => r.metricid).sort()).toEqual(local.map((r) => r.metricid).sort());
    expect((await http('GET', `${p.mentorUrl}/devices/dev-outage`)).body).toMatchObject({ device_name: 'Outage' });

    // Exactly once at the delivery level too: one delivery per event, each succeeded, none dead.
    const log = await eventually(async () => {
      const rows = (await http('GET', `${p.devicesUrl}/api/v1/deliveries?limit=1000&event_type=metric.submitted`, undefined, auth)).body
        .data as Rec[];
      return rows.length === RECORDS && rows.every((r) => r.status === 'succeeded') ? rows : null;
    });
    expect(new Set(log.map((r) => r.event_id)).size).toBe(RECORDS);
    expect((await http('GET', `${p.devicesUrl}/api/v1/deliveries?status=dead`, undefined, auth)).body.data).toEqual([]);
  });
});
