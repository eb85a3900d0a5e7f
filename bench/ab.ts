/**
 * `node --import tsx bench/ab.ts <sqlite|postgres> NAME=a,b [seconds=8] [rounds=3] [mentor]`
 *
 * A/B one setting of the devices host at saturation: for each round, one host per value of the environment
 * variable NAME, one after the other, each forwarding every metric to a mentor sink and (unless `mentor`
 * is given) one webhook sink, loaded by autocannon with 16 connections for `seconds`. Prints records/s per
 * round and value, then the median per value. Interleaved rounds on one build make a difference of a few
 * per cent visible on a noisy machine, where two separate `npm run bench` runs can differ by 15%. Set
 * NO_BUILD=1 to reuse the hosts built by the last bench run.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { addWebhook, BUILD_DIR, buildHosts, DbProbe, registerDevices, startProcess, until, Workspace } from './lib/hosts.js';
import { cannon } from './lib/load.js';
import { startSinkProcess } from './lib/sink.js';
import { percentile } from './lib/stats.js';

const [dialectArg, setting, secArg, roundsArg, only] = process.argv.slice(2);
const dialect = dialectArg as 'sqlite' | 'postgres';
const match = /^([A-Z0-9_]+)=(.+)$/.exec(setting ?? '');
if ((dialect !== 'sqlite' && dialect !== 'postgres') || !match) {
  console.error('usage: node --import tsx bench/ab.ts <sqlite|postgres> NAME=a,b [seconds=8] [rounds=3] [mentor]');
  process.exit(2);
}
const [, name, list] = match as unknown as [string, string, string];
const values = list.split(',');
const sec = Number(secArg ?? 8);
const rounds = Number(roundsArg ?? 3);
const webhook = only !== 'mentor';

if (!process.env.NO_BUILD) buildHosts();
const ws = new Workspace(dialect);
const mentor = await startSinkProcess();
const hook = await startSinkProcess();
const rates = new Map<string, number[]>(values.map((v) => [v, []]));
try {
  const token = randomBytes(16).toString('hex');
  const cli = path.join(BUILD_DIR, 'hosts/cli.js');
  for (let round = 1; round <= rounds; round++) {
    for (const [i, value] of values.entries()) {
      const db = await ws.database(`ab_${round}_${i}`);
      const env = {
        RELAY_ADMIN_TOKEN: token,
        WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
        LOG_LEVEL: 'warn',
        DATABASE_URL: db.url,
        MENTOR_API_URL: mentor.url,
        [name]: value,
      };
      const host = await startProcess({ name: `ab-${value}`, script: cli, args: ['devices', '--host', '127.0.0.1'], env, ws });
      ws.track(host);
      if (webhook) await addWebhook(host.url, token, `${hook.url}/hook`);
      const devices = await registerDevices(host.url, 20);
      await cannon({ url: host.url, devices, connections: 16, durationSec: 2 });
      const r = await cannon({ url: host.url, devices, connections: 16, durationSec: sec });
      const probe = new DbProbe(db.url);
      await until('drained', () => probe.drained(), 300_000, 50);
      await probe.close();
      rates.get(value)!.push(r.rps);
      console.log(`round ${round} ${name}=${value}: ${r.rps.toFixed(0)} records/s`);
      await host.stop(20_000);
    }
  }
  for (const [value, r] of rates)
    console.log(`${name}=${value}: median ${percentile(r, 50).toFixed(0)} records/s (${r.map((x) => x.toFixed(0)).join(', ')})`);
} finally {
  await mentor.close();
  await hook.close();
  await ws.cleanup();
}
