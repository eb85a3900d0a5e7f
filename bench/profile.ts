/**
 * `node --import tsx bench/profile.ts [sqlite|postgres] [rate=150] [seconds=15] [outDir=/tmp/relay-prof]`
 *
 * CPU profiles (`node --cpu-prof`) of two devices hosts run one after the other at the same fixed rate:
 * `on-<dialect>.cpuprofile` forwards every metric to a mentor sink and one webhook sink, `off-<dialect>`
 * forwards nothing. Read them with `node bench/profile-read.mjs` (self time by file and function, or the
 * difference on - off). Set NO_BUILD=1 to reuse the hosts built by the last bench run, and NO_WEBHOOK=1 to
 * profile forwarding to the mentor alone.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { addWebhook, BUILD_DIR, buildHosts, DbProbe, registerDevices, startProcess, until, Workspace } from './lib/hosts.js';
import { cannon } from './lib/load.js';
import { startSinkProcess } from './lib/sink.js';

const dialect = (process.argv[2] ?? 'sqlite') as 'sqlite' | 'postgres';
const rate = Number(process.argv[3] ?? 150);
const sec = Number(process.argv[4] ?? 15);
const outDir = process.argv[5] ?? '/tmp/relay-prof';
process.setSourceMapsEnabled(false);
if (!process.env.NO_BUILD) buildHosts();
const ws = new Workspace(dialect);
const mentor = await startSinkProcess();
const hook = await startSinkProcess();
try {
  const token = randomBytes(16).toString('hex');
  const common = { RELAY_ADMIN_TOKEN: token, WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true', LOG_LEVEL: 'warn' };
  const cli = path.join(BUILD_DIR, 'hosts/cli.js');
  for (const mode of ['on', 'off'] as const) {
    const db = await ws.database(`prof_${mode}`);
    const env = { ...common, DATABASE_URL: db.url, ...(mode === 'on' ? { MENTOR_API_URL: mentor.url } : {}) };
    const host = await startProcess({
      name: `prof-${mode}`,
      script: cli,
      args: ['devices', '--host', '127.0.0.1'],
      env,
      ws,
      nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${outDir}`, `--cpu-prof-name=${mode}-${dialect}.cpuprofile`],
    });
    ws.track(host);
    if (mode === 'on' && !process.env.NO_WEBHOOK) await addWebhook(host.url, token, `${hook.url}/hook`);
    const devices = await registerDevices(host.url, 20);
    await cannon({ url: host.url, devices, connections: 16, rate, durationSec: 3 });
    const r = await cannon({ url: host.url, devices, connections: 16, rate, durationSec: sec });
    const probe = new DbProbe(db.url);
    const d = await until('drained', () => probe.drained(), 300_000, 50);
    await probe.close();
    console.log(`${mode}: ${r.rps.toFixed(0)}/s ok ${r.ok} p99 ${r.latency.p99} drain ${d} ms`);
    await host.stop(20_000);
  }
} finally {
  await mentor.close();
  await hook.close();
  await ws.cleanup();
}
