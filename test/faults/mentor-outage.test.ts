/**
 * The mentor goes down for 60 s in the middle of a 10,000-record stream (SPEC section 5: "a mentor outage
 * of any length loses nothing"). Real processes: a devices host and a mentor host, signed forwards. The
 * mentor is killed with SIGKILL ten seconds into the stream and restarted on the same port and database 60 s
 * later; afterwards every one of the 10,000 records is at the mentor, and none twice.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DIALECTS } from '../helpers/db.js';
import { startPair } from '../helpers/e2e.js';
import type { Pair } from '../helpers/e2e.js';
import { killAll } from '../helpers/processes.js';
import { eventually } from '../helpers/sink.js';
import { DbReader, missing, registerDevices, sleep, streamMetrics } from './helpers.js';

const TOTAL = 10_000;
const RATE = 125; // records/s: the stream lasts about 80 s and spans the outage
const OUTAGE_MS = 60_000;

describe.each(DIALECTS)('mentor down for 60 s during a 10,000-record stream (%s)', (dialect) => {
  let pair: Pair | undefined;
  const readers: DbReader[] = [];
  afterEach(async () => {
    for (const r of readers.splice(0)) await r.close().catch(() => undefined);
    await pair?.close();
    pair = undefined;
    await killAll();
  });

  it('delivers all 10,000 records once the mentor is back, none twice', { timeout: 300_000 }, async () => {
    // A shorter backoff than production so the test does not sit in a 30 s circuit cool-down; the
    // default FORWARD_MAX_RETRIES (3) is kept: the outage must not spend attempts.
    pair = await startPair(dialect, { devicesEnv: { FORWARD_BACKOFF_BASE: '0.25' } });
    const p = pair;
    const devices = await registerDevices(p.devicesUrl, 10, 'outage');
    const central = new DbReader(p.mentorEnv.DATABASE_URL!);
    const local = new DbReader(p.devicesEnv.DATABASE_URL!);
    readers.push(central, local);

    const { progress, done } = streamMetrics({ url: () => p.devicesUrl, devices, total: TOTAL, concurrency: 8, rate: RATE });
    await sleep(10_000);
    await p.mentor!.kill();
    p.mentor = undefined;
    const downAt = Date.now();
    const ackedBefore = progress.acked.size;
    await sleep(OUTAGE_MS);
    // Ingestion never waited for the mentor: the stream kept being acknowledged through the outage.
    expect(progress.acked.size - ackedBefore).toBeGreaterThan((RATE * (Date.now() - downAt)) / 1000 / 2);
    expect(await local.backlog()).toBeGreaterThan(0);
    await p.startMentor();

    const result = await done;
    expect(result.unanswered.size).toBe(0);
    expect([...result.refused.keys()]).toEqual([]);
    expect(result.acked.size).toBe(TOTAL);

    await eventually(async () => (await local.backlog()) === 0, 180_000, 500);
    const markers = await central.mentorMarkers();
    expect(missing(result.acked, markers)).toEqual([]);
    const twice = [...markers].filter(([, n]) => n > 1);
    expect(twice).toEqual([]);
    expect(markers.size).toBe(TOTAL);
    const deliveries = await local.deliveries();
    expect(deliveries.dead ?? 0).toBe(0);
    // Ten devices' registrations plus the 10,000 metrics, each delivered once.
    expect(deliveries.succeeded).toBe(TOTAL + devices.length);
    expect(p.devices.child.exitCode).toBeNull();
  });
});
