/**
 * End to end as Raqeem's device simulator (`devices/frontend/src/components/DeviceSimulator.jsx` in
 * mj-nehme/raqeem) drives a devices backend: its request shapes, unchanged, against a real devices host (CLI
 * process) forwarding, signed, to a real mentor host. Register with its fields, metrics, activities and alerts
 * as arrays, a process list, the multipart upload to `POST /api/v1/screenshots` with `device_id`, the pending
 * commands poll and results posted to `POST /api/v1/commands/{id}/result`; then every record is checked at the
 * mentor, by its record id. No timing assertions: `eventually` polls until the forwards have landed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DIALECTS } from './helpers/db.js';
import { http, startPair } from './helpers/e2e.js';
import type { Pair } from './helpers/e2e.js';
import { killAll } from './helpers/processes.js';
import { eventually } from './helpers/sink.js';

type Rec = Record<string, unknown>;

/** A 1x1 transparent PNG (the simulator uploads a canvas as image/png). */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=', 'base64');

describe.each(DIALECTS)("Raqeem's device simulator against the relay (%s)", (dialect) => {
  let pair: Pair | undefined;
  afterEach(async () => {
    await pair?.close();
    pair = undefined;
    await killAll();
  });

  it('replays the simulator and finds every record at the mentor', async () => {
    pair = await startPair(dialect);
    const api = `${pair.devicesUrl}/api/v1`;
    const mentor = pair.mentorUrl;
    // The simulator's id: `device-` and nine base-36 characters.
    const id = `device-${Math.random().toString(36).slice(2, 11).padEnd(9, '0')}`;

    const reg = await http('POST', `${api}/devices/register`, {
      deviceid: id,
      device_name: `laptop-${id.slice(-4)}`,
      device_type: 'laptop',
      os: 'macOS',
      current_user: 'simulator-user',
      device_location: 'Simulated Location',
      ip_address: '192.168.1.42',
      mac_address: '0a:1b:2c:3d:4e:5f',
    });
    expect(reg.status).toBe(200);

    const metrics = [0, 1].map((i) => ({
      cpu_usage: 12.5 + i,
      cpu_temp: 55.25,
      memory_total: 16384,
      memory_used: 8000 + i,
      swap_used: 100,
      disk_total: 500000,
      disk_used: 250000,
      net_bytes_in: 123456,
      net_bytes_out: 65432,
    }));
    for (const m of metrics) expect((await http('POST', `${api}/devices/${id}/metrics`, m)).body).toEqual({ status: 'ok' });

    const activities = [
      { activity_type: 'app_usage', app: 'VSCode', description: 'User activity on Chrome', duration: 120 },
      { activity_type: 'file_access', app: 'Terminal', description: 'User activity on Slack', duration: 7 },
    ];
    expect((await http('POST', `${api}/devices/${id}/activities`, activities)).body).toEqual({ inserted: 2 });
    const alerts = [{ level: 'warning', alert_type: 'cpu_high', message: 'Simulated alert condition detected', value: 91, threshold: 80 }];
    expect((await http('POST', `${api}/devices/${id}/alerts`, alerts)).body).toEqual({ inserted: 1 });
    const processes = [
      { pid: 1234, process_name: 'chrome', cpu: 15.2, memory: 512000, command_text: '/usr/bin/chrome' },
      { pid: 5678, process_name: 'node', cpu: 8.5, memory: 256000, command_text: '/usr/bin/node' },
    ];
    expect((await http('POST', `${api}/devices/${id}/processes`, processes)).body).toEqual({ inserted: 2 });

    const form = new FormData();
    form.append('device_id', id);
    form.append('file', new Blob([PNG], { type: 'image/png' }), `screenshot-${Date.now()}.png`);
    const upload = await fetch(`${api}/screenshots`, { method: 'POST', body: form });
    expect(upload.status).toBe(201);
    const shot = (await upload.json()) as Rec;
    expect(shot).toMatchObject({ deviceid: id, size: PNG.length });

    // Commands: one from the mentor (forwarded as command.created), one made on the devices host itself.
    await eventually(async () => (await http('GET', `${mentor}/devices/${id}`)).status === 200);
    const fromMentor = await http('POST', `${mentor}/devices/${id}/commands`, { command_text: 'get_info' });
    expect(fromMentor.status).toBe(201);
    const onDevices = await http(
      'POST',
      `${api}/devices/${id}/commands`,
      { command_text: 'restart_service nginx' },
      {
        authorization: `Bearer ${pair.adminToken}`,
      },
    );
    expect(onDevices.status).toBe(200);
    expect(onDevices.body).toMatchObject({ deviceid: id, command_text: 'restart_service nginx', status: 'pending' });

    // The simulator's poll, then a result per command on its path.
    const pending = await eventually(async () => {
      const r = (await http('GET', `${api}/devices/${id}/commands/pending`)).body as Rec[];
      return r.length === 2 ? r : null;
    });
    expect(pending.map((c) => c.commandid).sort()).toEqual([fromMentor.body.commandid, onDevices.body.commandid].sort());
    for (const cmd of pending) {
      const done = await http('POST', `${api}/commands/${String(cmd.commandid)}/result`, {
        status: 'completed',
        result: `ran ${String(cmd.command_text)}`,
        exit_code: 0,
      });
      expect(done.body).toEqual({ status: 'ok', commandid: cmd.commandid });
    }
    expect((await http('GET', `${api}/devices/${id}/commands/pending`)).body).toEqual([]);

    // The dashboard's views on the devices host: aliases and the lists across devices.
    expect((await http('GET', `${api}/devices/${id}`)).body).toMatchObject({ id, deviceid: id, name: `laptop-${id.slice(-4)}` });
    expect(((await http('GET', `${api}/devices/processes`)).body as Rec[]).map((p) => p.name).sort()).toEqual(['chrome', 'node']);
    expect(((await http('GET', `${api}/devices/activities`)).body as Rec[]).length).toBe(2);
    expect(((await http('GET', `${api}/devices/alerts`)).body as Rec[]).length).toBe(1);

    // Every record at the mentor, by its record id.
    const m = `${mentor}/devices/${id}`;
    for (const [list, key, count] of [
      ['metrics', 'metricid', 2],
      ['activities', 'activityid', 2],
      ['alerts', 'alertid', 1],
      ['screenshots', 'screenshotid', 1],
    ] as const) {
      const local = (await http('GET', `${api}/devices/${id}/${list}`)).body as Rec[];
      expect(local).toHaveLength(count);
      const central = await eventually(async () => {
        const rows = (await http('GET', `${m}/${list}`)).body as Rec[];
        return rows.length === count ? rows : null;
      });
      expect(central.map((r) => r[key]).sort()).toEqual(local.map((r) => r[key]).sort());
    }
    expect(((await http('GET', `${m}/screenshots`)).body as Rec[])[0]).toMatchObject({ screenshotid: shot.screenshotid, size: PNG.length });
    const metricsAtMentor = (await http('GET', `${m}/metrics`)).body as Rec[];
    expect(metricsAtMentor.map((r) => r.memory_used).sort()).toEqual([8000, 8001]);
    const alertsAtMentor = (await http('GET', `${m}/alerts`)).body as Rec[];
    expect(alertsAtMentor[0]).toMatchObject(alerts[0]!);
    const procs = await eventually(async () => {
      const rows = (await http('GET', `${m}/processes`)).body as Rec[];
      return rows.length === 2 ? rows : null;
    });
    expect(procs.map((p) => [p.pid, p.process_name, p.cpu, p.memory, p.command_text]).sort()).toEqual(
      processes.map((p) => [p.pid, p.process_name, p.cpu, p.memory, p.command_text]).sort(),
    );
    expect((await http('GET', m)).body).toMatchObject({
      deviceid: id,
      device_name: `laptop-${id.slice(-4)}`,
      device_type: 'laptop',
      os: 'macOS',
      current_user: 'simulator-user',
      device_location: 'Simulated Location',
      ip_address: '192.168.1.42',
      mac_address: '0a:1b:2c:3d:4e:5f',
    });
    // Both commands completed at the mentor, the one made on the devices host included.
    const commands = await eventually(async () => {
      const rows = (await http('GET', `${m}/commands`)).body as Rec[];
      return rows.length === 2 && rows.every((c) => c.status === 'completed') ? rows : null;
    });
    expect(commands.map((c) => [c.commandid, c.command_text, c.result, c.exit_code]).sort()).toEqual(
      [
        [fromMentor.body.commandid, 'get_info', 'ran get_info', 0],
        [onDevices.body.commandid, 'restart_service nginx', 'ran restart_service nginx', 0],
      ].sort(),
    );
    // Nothing was refused on the way: no dead deliveries on the devices host.
    const dead = await http('GET', `${api}/deliveries?status=dead`, undefined, { authorization: `Bearer ${pair.adminToken}` });
    expect(dead.body).toMatchObject({ data: [] });
  });
});
