/** Replaced state (devices, process lists, command status) never goes back in time when forwards arrive out of order. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DIALECTS } from './helpers/db.js';
import { fixtures, startMentorFixture } from './helpers/mentor.js';
import type { MentorFixture } from './helpers/mentor.js';

const at = (s: number) => new Date(Date.UTC(2025, 0, 1, 12, 0, s)).toISOString();
const proc = (pid: number, name: string) => ({
  pid,
  process_name: name,
  cpu: pid % 100,
  memory: pid * 1000,
  command_text: `/usr/bin/${name}`,
});

describe.each(DIALECTS)('mentor ordering (%s)', (dialect) => {
  let m: MentorFixture;
  beforeEach(async () => {
    m = await startMentorFixture(dialect);
  });
  afterEach(async () => {
    await m.close();
  });

  it('never lets a stale registration overwrite a newer one', async () => {
    const newer = await m.post('/devices/register', fixtures.registration('dev-1', { device_name: 'New name', last_seen: at(20) }));
    expect(newer.body).toMatchObject({ created: true, applied: true });
    const stale = await m.post(
      '/devices/register',
      fixtures.registration('dev-1', { device_name: 'Old name', os: 'windows', last_seen: at(10) }),
    );
    expect(stale.status).toBe(200);
    expect(stale.body).toMatchObject({ created: false, applied: false });
    expect((await m.get('/devices/dev-1')).body).toMatchObject({ device_name: 'New name', os: 'linux', last_seen: at(20) });

    const newest = await m.post('/devices/register', fixtures.registration('dev-1', { device_name: 'Newest', last_seen: at(30) }));
    expect(newest.body).toMatchObject({ created: false, applied: true });
    expect((await m.get('/devices/dev-1')).body).toMatchObject({ device_name: 'Newest', last_seen: at(30) });
  });

  it('keeps fields a registration leaves out', async () => {
    await m.post('/devices/register', fixtures.registration('dev-1', { last_seen: at(1) }));
    await m.post('/devices/register', { deviceid: 'dev-1', device_name: 'Renamed', last_seen: at(2) });
    expect((await m.get('/devices/dev-1')).body).toMatchObject({
      device_name: 'Renamed',
      os: 'linux',
      current_user: 'alice',
      is_online: true,
    });
  });

  it('lower-cases UUID device ids', async () => {
    const id = '3F2504E0-4F89-11D3-9A0C-0305E82C3301';
    await m.post('/devices/register', { deviceid: id });
    expect((await m.get(`/devices/${id.toLowerCase()}`)).status).toBe(200);
    expect((await m.get(`/devices/${id}`)).body).toMatchObject({ deviceid: id.toLowerCase() });
  });

  it('replaces the process list only with a newer snapshot, array and envelope forms alike', async () => {
    const snapshot = (s: number, procs: ReturnType<typeof proc>[]) => procs.map((p) => ({ ...p, deviceid: 'dev-1', snapshot_at: at(s) }));
    const first = await m.post('/devices/processes', snapshot(20, [proc(1, 'init'), proc(42, 'nginx')]));
    expect(first.body).toMatchObject({ replaced: true, inserted: 2 });

    const older = await m.post('/devices/processes', snapshot(10, [proc(7, 'stale')]));
    expect(older.status).toBe(200);
    expect(older.body).toMatchObject({ replaced: false, inserted: 0 });
    const equal = await m.post('/devices/processes', snapshot(20, [proc(8, 'replayed')]));
    expect(equal.body).toMatchObject({ replaced: false });
    const names = async () =>
      ((await m.get('/devices/dev-1/processes')).body as Array<{ process_name: string }>).map((p) => p.process_name).sort();
    expect(await names()).toEqual(['init', 'nginx']);

    const cleared = await m.post('/devices/processes', { deviceid: 'dev-1', snapshot_at: at(30), processes: [] });
    expect(cleared.body).toMatchObject({ replaced: true, inserted: 0 });
    expect(await names()).toEqual([]);

    // An older non-empty snapshot must not resurrect processes after the clear.
    await m.post('/devices/processes', snapshot(25, [proc(9, 'ghost')]));
    expect(await names()).toEqual([]);

    await m.post('/devices/processes', { deviceid: 'dev-1', snapshot_at: at(40), processes: [proc(3, 'sshd')] });
    const [row] = (await m.get('/devices/dev-1/processes')).body as Array<Record<string, unknown>>;
    expect(row).toMatchObject({
      deviceid: 'dev-1',
      pid: 3,
      process_name: 'sshd',
      cpu: 3,
      memory: 3000,
      command_text: '/usr/bin/sshd',
      snapshot_at: at(40),
    });
  });

  it('refuses snapshots that mix devices or times, and empty arrays', async () => {
    const mixed = await m.post('/devices/processes', [
      { ...proc(1, 'a'), deviceid: 'dev-1', snapshot_at: at(1) },
      { ...proc(2, 'b'), deviceid: 'dev-2', snapshot_at: at(2) },
    ]);
    expect(mixed.status).toBe(422);
    expect(mixed.body.errors.map((e: { path: string }) => e.path)).toEqual(['[1].deviceid', '[1].snapshot_at']);
    expect((await m.post('/devices/processes', [])).status).toBe(422);
    expect((await m.get('/devices/dev-1/processes')).body).toEqual([]);
  });

  it('ignores a command status report older than the one in force', async () => {
    await m.post('/devices/register', fixtures.registration('dev-1'));
    const created = await m.post('/devices/dev-1/commands', { command_text: 'get_info' });
    expect(created.status).toBe(201);
    const { commandid } = created.body as { commandid: string };

    const done = await m.post('/commands/status', {
      commandid,
      deviceid: 'dev-1',
      status: 'completed',
      result: 'ok',
      exit_code: 0,
      updated_at: at(20),
    });
    expect(done.body).toMatchObject({ applied: true, command: { status: 'completed', result: 'ok', exit_code: 0 } });
    const late = await m.post('/commands/status', {
      commandid,
      deviceid: 'dev-1',
      status: 'running',
      result: null,
      exit_code: null,
      updated_at: at(10),
    });
    expect(late.status).toBe(200);
    expect(late.body).toMatchObject({ applied: false });
    const [cmd] = (await m.get('/devices/dev-1/commands')).body as Array<Record<string, unknown>>;
    expect(cmd).toMatchObject({ commandid, status: 'completed', result: 'ok', exit_code: 0 });
  });
});
