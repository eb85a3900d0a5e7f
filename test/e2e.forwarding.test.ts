/**
 * End to end with the real CLI processes on loopback: the seed's manual forwarding test, every data type
 * from the devices host to the mentor with the same record ids, and the command round trip. Signed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DIALECTS } from './helpers/db.js';
import { http, startPair } from './helpers/e2e.js';
import type { Pair } from './helpers/e2e.js';
import { killAll } from './helpers/processes.js';
import { eventually } from './helpers/sink.js';

type Rec = Record<string, unknown>;

describe.each(DIALECTS)('end to end forwarding (%s)', (dialect) => {
  let pair: Pair | undefined;
  afterEach(async () => {
    await pair?.close();
    pair = undefined;
    await killAll();
  });

  it('passes the seed document\'s "Test Forwarding Manually" check', async () => {
    pair = await startPair(dialect);
    // 1. Submit data to Devices Backend
    const reg = await http('POST', `${pair.devicesUrl}/api/v1/devices/register`, {
      deviceid: 'test-device-123',
      device_name: 'Test Device',
    });
    expect(reg.status).toBe(200);
    expect(reg.body).toEqual({ deviceid: 'test-device-123', created: true, updated: null });
    // 2. Query Devices Backend (should exist)
    const local = await http('GET', `${pair.devicesUrl}/api/v1/devices/test-device-123`);
    expect(local.status).toBe(200);
    expect(local.body).toMatchObject({ deviceid: 'test-device-123', device_name: 'Test Device', is_online: true });
    // 3. Query Mentor Backend (should also exist if forwarding works)
    const central = await eventually(async () => {
      const r = await http('GET', `${pair!.mentorUrl}/devices/test-device-123`);
      return r.status === 200 ? r : null;
    });
    expect(central.body).toMatchObject({
      deviceid: 'test-device-123',
      device_name: 'Test Device',
      last_seen: local.body.last_seen,
      is_online: true,
    });
  });

  it('forwards every data type with the same record ids', async () => {
    pair = await startPair(dialect);
    const d = `${pair.devicesUrl}/api/v1/devices/dev-all`;
    const m = `${pair.mentorUrl}/devices/dev-all`;
    expect(
      (await http('POST', `${pair.devicesUrl}/api/v1/devices/register`, { deviceid: 'dev-all', device_name: 'All types', os: 'linux' }))
        .status,
    ).toBe(200);
    for (const cpu of [10, 20, 30]) {
      expect((await http('POST', `${d}/metrics`, { cpu_usage: cpu, memory_total: 8_589_934_592, memory_used: 4_294_967_296 })).status).toBe(
        200,
      );
    }
    expect(
      (
        await http('POST', `${d}/activities`, [
          { activity_type: 'app_launch', description: 'editor', app: 'code', duration: 60 },
          { activity_type: 'idle', description: null, app: null, duration: 300 },
        ])
      ).body,
    ).toEqual({ inserted: 2 });
    expect(
      (await http('POST', `${d}/alerts`, [{ level: 'critical', alert_type: 'cpu_high', message: 'CPU 95%', value: 95, threshold: 90 }]))
        .body,
    ).toEqual({ inserted: 1 });
    expect(
      (
        await http('POST', `${d}/processes`, [
          { pid: 1, process_name: 'init', cpu: 0.1, memory: 1024, command_text: '/sbin/init' },
          { pid: 4242, process_name: 'node', cpu: 12.5, memory: 104_857_600, command_text: 'node server.js' },
        ])
      ).body,
    ).toEqual({ inserted: 2 });
    const shot = await http('POST', `${d}/screenshots`, { path: 'shots/dev-all/1.png', resolution: '1280x720', size: 2048 });
    expect(shot.status).toBe(201);
    const form = new FormData();
    form.append('file', new Blob([PNG], { type: 'image/png' }), 'tiny.png');
    form.append('resolution', '1x1');
    const upload = await fetch(`${d}/screenshots`, { method: 'POST', body: form });
    expect(upload.status).toBe(201);

    for (const [list, key] of [
      ['metrics', 'metricid'],
      ['activities', 'activityid'],
      ['alerts', 'alertid'],
      ['screenshots', 'screenshotid'],
    ] as const) {
      const local = (await http('GET', `${d}/${list}?limit=1000`)).body as Rec[];
      expect(local.length).toBeGreaterThan(0);
      const central = await eventually(async () => {
        const rows = (await http('GET', `${m}/${list}?limit=1000`)).body as Rec[];
        return rows.length === local.length ? rows : null;
      });
      expect(central.map((r) => r[key]).sort()).toEqual(local.map((r) => r[key]).sort());
      // The mentor keeps the seed's record shape: every field the devices host stored, unchanged.
      const byId = new Map(central.map((r) => [r[key], r]));
      for (const r of local) expect(byId.get(r[key])).toMatchObject(pickShared(r, byId.get(r[key])!));
    }

    const procs = await eventually(async () => {
      const rows = (await http('GET', `${m}/processes`)).body as Rec[];
      return rows.length === 2 ? rows : null;
    });
    expect(procs.map((p) => [p.pid, p.process_name, p.command_text]).sort()).toEqual([
      [1, 'init', '/sbin/init'],
      [4242, 'node', 'node server.js'],
    ]);
    expect((await http('GET', m)).body).toMatchObject({ deviceid: 'dev-all', device_name: 'All types', os: 'linux' });
  });

  it('round-trips a command: mentor -> devices pending -> device result -> mentor status, same commandid', async () => {
    pair = await startPair(dialect);
    await http('POST', `${pair.devicesUrl}/api/v1/devices/register`, { deviceid: 'dev-cmd' });
    await eventually(async () => (await http('GET', `${pair!.mentorUrl}/devices/dev-cmd`)).status === 200);

    const created = await http('POST', `${pair.mentorUrl}/devices/dev-cmd/commands`, { command_text: 'restart_service nginx' });
    expect(created.status).toBe(201);
    const { commandid } = created.body as { commandid: string };

    const pending = await eventually(async () => {
      const r = (await http('GET', `${pair!.devicesUrl}/api/v1/devices/dev-cmd/commands/pending`)).body as Rec[];
      return r.length > 0 ? r : null;
    });
    expect(pending).toEqual([expect.objectContaining({ commandid, command_text: 'restart_service nginx', status: 'pending' })]);

    const result = await http('POST', `${pair.devicesUrl}/api/v1/devices/commands/${commandid}/result`, {
      status: 'completed',
      result: 'nginx restarted',
      exit_code: 0,
    });
    expect(result.status).toBe(200);
    expect(result.body).toEqual({ status: 'ok', commandid });

    const done = await eventually(async () => {
      const [c] = (await http('GET', `${pair!.mentorUrl}/devices/dev-cmd/commands`)).body as Rec[];
      return c?.status === 'completed' ? c : null;
    });
    expect(done).toMatchObject({
      commandid,
      deviceid: 'dev-cmd',
      command_text: 'restart_service nginx',
      result: 'nginx restarted',
      exit_code: 0,
    });
    expect((await http('GET', `${pair.devicesUrl}/api/v1/devices/dev-cmd/commands/pending`)).body).toEqual([]);
  });
});

/** The fields both sides carry (the mentor adds `received_at`; the devices host may add local-only fields). */
function pickShared(local: Rec, central: Rec): Rec {
  return Object.fromEntries(Object.entries(local).filter(([k]) => k in central));
}

/** A 1x1 transparent PNG. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=', 'base64');
