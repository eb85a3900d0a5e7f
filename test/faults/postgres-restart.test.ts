/**
 * PostgreSQL restarts under load (`pg_ctlcluster <version> main restart`, which disconnects every session).
 * Both hosts run on PostgreSQL as real processes while a stream of metrics arrives. Requests that meet the
 * restart may be refused (the database is gone for a moment), but no process may crash, and every record
 * acknowledged with 200 must reach the mentor. The cluster is always left running.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startPair } from '../helpers/e2e.js';
import type { Pair } from '../helpers/e2e.js';
import { killAll } from '../helpers/processes.js';
import { eventually } from '../helpers/sink.js';
import { DbReader, missing, registerDevices, streamMetrics } from './helpers.js';

const TOTAL = 6_000;

function cluster(action: 'restart' | 'start'): void {
  const version = readdirSync('/etc/postgresql').sort().at(-1)!;
  execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', version, 'main', action], { stdio: 'pipe', timeout: 120_000 });
}

function isReady(): boolean {
  try {
    execFileSync('pg_isready', ['-h', '127.0.0.1', '-p', '5432', '-q'], { stdio: 'pipe' });
    return true;
  } catch {
    return false;
  }
}

describe('PostgreSQL restarted under load (postgres)', () => {
  let pair: Pair | undefined;
  afterEach(async () => {
    if (!isReady()) cluster('start');
    await eventually(() => isReady(), 60_000, 500);
    await pair?.close();
    pair = undefined;
    await killAll();
  });

  it('no process crashes and every acknowledged record reaches the mentor', { timeout: 300_000 }, async () => {
    pair = await startPair('postgres');
    const p = pair;
    const devices = await registerDevices(p.devicesUrl, 10, 'pg-restart');
    const { progress, done } = streamMetrics({ url: () => p.devicesUrl, devices, total: TOTAL, concurrency: 8, rate: 200 });
    await eventually(() => progress.acked.size >= TOTAL / 4, 60_000, 10);
    const ackedBefore = progress.acked.size;
    cluster('restart');
    await eventually(() => isReady(), 60_000, 200);
    await eventually(() => progress.acked.size > ackedBefore + 200, 60_000, 50);
    const result = await done;

    // Both hosts survived the restart and report ready again.
    expect(p.devices.child.exitCode).toBeNull();
    expect(p.mentor!.child.exitCode).toBeNull();
    for (const url of [p.devicesUrl, p.mentorUrl])
      await eventually(async () => (await fetch(`${url}/health/ready`)).status === 200, 60_000, 250);
    // Refusals while the database was away are answers (not crashes) and never a promise; client errors are not expected.
    expect([...result.refused.keys()].every((s) => s >= 500)).toBe(true);
    expect(result.unanswered.size).toBe(0);

    const central = new DbReader(p.mentorEnv.DATABASE_URL!);
    const local = new DbReader(p.devicesEnv.DATABASE_URL!);
    try {
      await eventually(async () => (await local.backlog()) === 0, 180_000, 250);
      const markers = await central.mentorMarkers();
      expect(missing(result.acked, markers)).toEqual([]);
      expect((await local.deliveries()).dead ?? 0).toBe(0);
    } finally {
      await central.close();
      await local.close();
    }
    // Kept last: a crash while draining would show here.
    expect(p.devices.child.exitCode).toBeNull();
    expect(p.mentor!.child.exitCode).toBeNull();
  });
});
