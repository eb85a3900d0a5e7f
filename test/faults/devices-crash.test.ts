/**
 * The devices host is killed with SIGKILL three times during a stream; each time it is restarted on the same
 * port and database. Every record it acknowledged with 200 before a crash must reach the mentor: the
 * record and its delivery were committed together before the answer, so the restarted host (its dispatcher
 * reclaims the dead process's leases) delivers what the crash interrupted.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DIALECTS } from '../helpers/db.js';
import { startPair } from '../helpers/e2e.js';
import type { Pair } from '../helpers/e2e.js';
import { killAll, startHost } from '../helpers/processes.js';
import type { HostProcess } from '../helpers/processes.js';
import { eventually } from '../helpers/sink.js';
import { DbReader, missing, registerDevices, sleep, streamMetrics } from './helpers.js';

const TOTAL = 6_000;
const CRASHES = 3;

describe.each(DIALECTS)('devices host killed with SIGKILL three times mid-stream (%s)', (dialect) => {
  let pair: Pair | undefined;
  const extra: HostProcess[] = [];
  const readers: DbReader[] = [];
  afterEach(async () => {
    for (const r of readers.splice(0)) await r.close().catch(() => undefined);
    for (const h of extra.splice(0)) await h.kill();
    await pair?.close();
    pair = undefined;
    await killAll();
  });

  it('every record acknowledged with 200 reaches the mentor', { timeout: 300_000 }, async () => {
    pair = await startPair(dialect);
    const p = pair;
    const devices = await registerDevices(p.devicesUrl, 10, 'crash');
    const central = new DbReader(p.mentorEnv.DATABASE_URL!);
    const local = new DbReader(p.devicesEnv.DATABASE_URL!);
    readers.push(central, local);

    let host: HostProcess = p.devices;
    const { progress, done } = streamMetrics({ url: () => p.devicesUrl, devices, total: TOTAL, concurrency: 16, rate: 400 });
    let crashes = 0;
    let ackedAtLastRestart = 0;
    for (let i = 1; i <= CRASHES; i++) {
      // Crash early enough that requests lost while the host restarts (~3 s at 400/s each time) leave part of
      // the stream for the last restarted host.
      await eventually(() => progress.acked.size >= (TOTAL * i) / (2 * (CRASHES + 1)), 120_000, 5);
      const code = await host.kill();
      crashes += 1;
      expect(code).toBe('SIGKILL');
      await sleep(300);
      host = await startHost('devices', p.devicesEnv, p.devices.port);
      extra.push(host);
      ackedAtLastRestart = progress.acked.size;
    }
    const result = await done;
    expect(crashes).toBe(CRASHES);
    // The crashes cut requests short (no answer): those were never promised. Everything answered was 200.
    expect([...result.refused.keys()]).toEqual([]);
    expect(result.acked.size + result.unanswered.size).toBe(TOTAL);
    // The last restarted host took part of the stream too.
    expect(result.acked.size).toBeGreaterThan(ackedAtLastRestart);

    await eventually(async () => (await local.backlog()) === 0, 180_000, 250);
    const markers = await central.mentorMarkers();
    expect(missing(result.acked, markers)).toEqual([]);
    // The mentor keeps one row per record even when a crash made the devices host send one twice.
    expect([...markers.values()].every((n) => n === 1)).toBe(true);
    expect((await local.deliveries()).dead ?? 0).toBe(0);
  });
});
