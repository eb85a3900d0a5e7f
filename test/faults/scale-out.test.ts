/**
 * Scale-out on PostgreSQL: two devices hosts (one of them ingest-only, `RELAY_DISPATCH=false`) and two
 * `raqeem-relay worker` processes share one outbox, so three dispatchers claim from the same table
 * (`FOR UPDATE SKIP LOCKED`) beside the direct path of the dispatching host. The mentor is a recording
 * receiver here, so that a record sent twice would be seen (the real mentor would hide it by
 * de-duplicating): every acknowledged record must arrive exactly once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createPgDatabase } from '../helpers/db.js';
import { killAll, spawnCli, startHost } from '../helpers/processes.js';
import type { CliProcess, HostProcess } from '../helpers/processes.js';
import { eventually, startSink } from '../helpers/sink.js';
import type { Sink } from '../helpers/sink.js';
import { DbReader, missing, registerDevices, streamMetrics } from './helpers.js';

const PER_HOST = 4_000;

/** Markers in the bodies the sink received: one record or an array of records per request. */
function received(sink: Sink): Map<number, number> {
  const seen = new Map<number, number>();
  for (const r of sink.requests) {
    if (r.path !== '/devices/metrics') continue;
    const body = JSON.parse(r.body) as unknown;
    for (const rec of Array.isArray(body) ? body : [body]) {
      const m = Number((rec as { memory_total: unknown }).memory_total);
      seen.set(m, (seen.get(m) ?? 0) + 1);
    }
  }
  return seen;
}

describe('two devices hosts and two workers on one PostgreSQL outbox (postgres)', () => {
  let sink: Sink | undefined;
  let drop: (() => Promise<void>) | undefined;
  const procs: Array<HostProcess | CliProcess> = [];
  afterEach(async () => {
    for (const p of procs.splice(0)) p.child.kill('SIGKILL');
    await killAll();
    await sink?.close();
    sink = undefined;
    await drop?.();
    drop = undefined;
  });

  it('delivers every acknowledged record exactly once', { timeout: 300_000 }, async () => {
    sink = await startSink();
    const database = await createPgDatabase('scaleout');
    drop = database.drop;
    const env = { DATABASE_URL: database.url, MENTOR_API_URL: sink.url, FORWARD_BACKOFF_BASE: '0.05', LOG_LEVEL: 'info' };
    // The first host applies the migrations; the others start beside it.
    const a = await startHost('devices', env);
    procs.push(a);
    // Host a also dispatches (its own records go straight to its dispatcher while it keeps up; it claims
    // the rest too); host b only ingests, so its records are claimed by a and the two workers.
    const [b, w1, w2] = await Promise.all([
      startHost('devices', { ...env, RELAY_DISPATCH: 'false' }),
      Promise.resolve(spawnCli(['worker'], env)),
      Promise.resolve(spawnCli(['worker'], env)),
    ]);
    procs.push(b, w1, w2);
    await eventually(() => w1.output().includes('worker dispatching') && w2.output().includes('worker dispatching'), 60_000, 100);
    expect(b.output()).toContain('dispatching is off on this host (RELAY_DISPATCH=false)');

    const devA = await registerDevices(a.url, 5, 'scale-a');
    const devB = await registerDevices(b.url, 5, 'scale-b');
    const streams = [
      streamMetrics({ url: () => a.url, devices: devA, total: PER_HOST, concurrency: 8, rate: 250 }),
      streamMetrics({ url: () => b.url, devices: devB, total: PER_HOST, concurrency: 8, rate: 250, markerStart: 1_000_000 }),
    ];
    const results = await Promise.all(streams.map((s) => s.done));
    const acked = new Set(results.flatMap((r) => [...r.acked]));
    expect(acked.size).toBe(2 * PER_HOST);

    const outbox = new DbReader(database.url);
    try {
      await eventually(async () => (await outbox.backlog()) === 0, 180_000, 250);
      const seen = received(sink);
      expect(missing(acked, seen)).toEqual([]);
      expect([...seen].filter(([, n]) => n > 1)).toEqual([]);
      expect(seen.size).toBe(2 * PER_HOST);
      const deliveries = await outbox.deliveries();
      expect(deliveries).toEqual({ succeeded: 2 * PER_HOST + devA.length + devB.length });
      // One attempt per delivery: nothing was retried, nothing claimed twice.
      const [attempts] = await outbox.rows<{ n: unknown; d: unknown }>(
        'SELECT COUNT(*) AS n, COUNT(DISTINCT delivery_id) AS d FROM relay_attempts',
      );
      expect(Number(attempts!.n)).toBe(Number(attempts!.d));
    } finally {
      await outbox.close();
    }
    // Every process is still up.
    for (const p of [a, b, w1, w2]) expect(p.child.exitCode).toBeNull();
    // The workers took part (they log nothing but their forwards; the hosts' logs are mostly requests).
    const forwarded = (p: CliProcess | HostProcess) => (p.output().match(/"msg":"forwarded /g) ?? []).length;
    expect(forwarded(w1) + forwarded(w2)).toBeGreaterThan(0);
    expect(forwarded(b)).toBe(0);
  });
});
