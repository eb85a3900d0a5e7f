/**
 * docs/webhooks.md cannot rot: every example payload is what the relay actually sends for that record (and
 * has the contract's fields), and every receiver example is started as a real process, registered as an
 * endpoint, and must accept real deliveries (also during a secret rotation) and refuse forged ones.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createEvent } from '../lib/events.js';
import { signHeaders } from '../lib/signing.js';
import { DIALECTS } from './helpers/db.js';
import { freePort } from './helpers/processes.js';
import { eventually, startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';
import { register, webhookFixture } from './helpers/webhooks.js';
import type { WebhookFixture } from './helpers/webhooks.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const DOC = readFileSync(path.join(ROOT, 'docs/webhooks.md'), 'utf8');
// Inside the repository so the examples' imports (express, standardwebhooks) resolve from node_modules.
const WORK = path.join(ROOT, 'node_modules/.cache/raqeem-doc-check', String(process.pid));

/** Fields of each event's data, per the contract between the hosts and the webhooks. */
const CONTRACT: Record<string, string[]> = {
  'device.registered': [
    'deviceid',
    'device_name',
    'device_type',
    'os',
    'device_location',
    'ip_address',
    'mac_address',
    'current_user',
    'last_seen',
    'is_online',
  ],
  'metric.submitted': [
    'metricid',
    'deviceid',
    'timestamp',
    'cpu_usage',
    'cpu_temp',
    'memory_total',
    'memory_used',
    'swap_used',
    'disk_total',
    'disk_used',
    'net_bytes_in',
    'net_bytes_out',
  ],
  'activity.submitted': ['activityid', 'deviceid', 'timestamp', 'activity_type', 'description', 'app', 'duration'],
  'process.snapshot': ['deviceid', 'snapshot_at', 'processes'],
  'alert.submitted': ['alertid', 'deviceid', 'timestamp', 'level', 'alert_type', 'message', 'value', 'threshold'],
  'screenshot.submitted': ['screenshotid', 'deviceid', 'timestamp', 'path', 'resolution', 'size', 'content_type'],
  'command.updated': ['commandid', 'deviceid', 'command_text', 'status', 'result', 'exit_code', 'created_at', 'updated_at'],
  'webhook.test': ['webhook_id', 'message'],
};

/** Fenced blocks announced by `<!-- doc-check: kind name -->`. */
function blocks(kind: string): Map<string, string> {
  const found = new Map<string, string>();
  const re = new RegExp(`<!-- doc-check: ${kind} (\\S+) -->\\s*\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``, 'g');
  for (const m of DOC.matchAll(re)) found.set(m[1]!, m[2]!);
  return found;
}

const examples = [...blocks('example')].map(([type, json]) => ({
  type,
  payload: JSON.parse(json) as { type: string; timestamp: string; data: Record<string, unknown> },
}));
const receivers = blocks('receiver');

describe('docs/webhooks.md example payloads', () => {
  it('has one example for every event type a devices-host webhook receives', () => {
    expect(examples.map((e) => e.type).sort()).toEqual(Object.keys(CONTRACT).sort());
  });

  it.each(examples)('$type has the contract fields, and nothing else', ({ type, payload }) => {
    expect(Object.keys(payload).sort()).toEqual(['data', 'timestamp', 'type']);
    expect(payload.type).toBe(type);
    expect(new Date(payload.timestamp).toISOString()).toBe(payload.timestamp);
    expect(Object.keys(payload.data).sort()).toEqual([...CONTRACT[type]!].sort());
  });
});

interface Running {
  child: ChildProcess;
  output: string[];
  url: string;
}

/** Start a receiver example as its own process with the endpoint's secret. */
async function startReceiver(name: string, secret: string): Promise<Running> {
  const source = receivers.get(name);
  if (!source) throw new Error(`docs/webhooks.md has no receiver example "${name}"`);
  const port = await freePort();
  let command: string;
  let args: string[];
  if (name === 'python') {
    const file = path.join(WORK, 'receiver.py');
    writeFileSync(file, source);
    [command, args] = ['python3', [file]];
  } else {
    // The published package name points at this checkout's source.
    const file = path.join(WORK, `receiver-${name}.mjs`);
    writeFileSync(file, source.replaceAll("'raqeem-relay/signing'", `'${pathToFileURL(path.join(ROOT, 'lib/signing.ts')).href}'`));
    [command, args] = [process.execPath, ['--import', 'tsx', file]];
  }
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), WEBHOOK_SECRET: secret },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  child.stdout!.on('data', (c: Buffer) => output.push(...c.toString('utf8').split('\n').filter(Boolean)));
  child.stderr!.on('data', (c: Buffer) => output.push(`stderr: ${c.toString('utf8')}`));
  const url = `http://127.0.0.1:${port}/webhooks/raqeem`;
  await eventually(
    async () => {
      if (child.exitCode !== null) throw new Error(`receiver ${name} exited: ${output.join('\n')}`);
      await fetch(url, { method: 'GET' });
      return true;
    },
    30_000,
    100,
  );
  return { child, output, url };
}

describe.each(DIALECTS)('docs/webhooks.md receivers (%s)', (dialect) => {
  let f: WebhookFixture;
  let running: Running | null = null;
  let sink: Sink | null = null;
  beforeAll(() => mkdirSync(WORK, { recursive: true }));
  afterAll(() => rmSync(WORK, { recursive: true, force: true }));
  afterEach(async () => {
    if (running && running.child.exitCode === null) {
      const exited = new Promise((r) => running!.child.once('exit', r));
      running.child.kill();
      await exited;
    }
    running = null;
    await sink?.close();
    sink = null;
    await f?.cleanup();
  });

  it('every example payload is exactly what the relay delivers for that record', async () => {
    f = await webhookFixture(dialect);
    sink = await startSink();
    await register(f, sink.url);
    await f.relay.publish(
      examples
        .filter((e) => e.type !== 'webhook.test')
        .map(({ payload }) => createEvent({ type: payload.type, timestamp: payload.timestamp, data: payload.data })),
    );
    await sink.waitFor(examples.length - 1);
    for (const { type, payload } of examples.filter((e) => e.type !== 'webhook.test')) {
      const got = sink.requests.map((r) => JSON.parse(r.body)).find((b) => b.type === type);
      expect(got, type).toEqual(payload);
    }
  });

  it.each(['relay', 'standardwebhooks', 'python'])(
    'the %s receiver accepts real deliveries, also during a rotation, and refuses forgeries',
    async (name) => {
      f = await webhookFixture(dialect);
      const probe = await register(f, 'http://127.0.0.1:9/placeholder');
      const secret = (await f.api('GET', `/webhooks/${probe.id}/secret`)).body.secret as string;
      running = await startReceiver(name, secret);
      await f.api('PATCH', `/webhooks/${probe.id}`, { url: running.url });
      const publish = () =>
        f.relay.publish(
          examples
            .filter((e) => e.type !== 'webhook.test')
            .map(({ payload }) => createEvent({ type: payload.type, deviceid: 'test-device-123', data: payload.data })),
        );
      await publish();
      expect((await f.api('POST', `/webhooks/${probe.id}/test`)).status).toBe(202);
      const all = examples.length;
      await eventually(async () => (await f.relay.listDeliveries({ status: 'succeeded' })).data.length === all);
      // During a rotation the receiver still holds the old secret: the second signature keeps it working.
      await f.api('POST', `/webhooks/${probe.id}/rotate-secret`);
      await publish();
      await eventually(async () => (await f.relay.listDeliveries({ status: 'succeeded' })).data.length === 2 * all - 1);
      const received = running.output.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l).received as string);
      expect(received.sort()).toEqual(
        [...examples.map((e) => e.type), ...examples.map((e) => e.type).filter((t) => t !== 'webhook.test')].sort(),
      );

      const body = JSON.stringify(examples[0]!.payload);
      const post = (headers: Record<string, string>) =>
        fetch(running!.url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body }).then((r) => r.status);
      const genuine = signHeaders({ id: 'evt_doccheck', body, secret });
      expect(await post(genuine)).toBe(204);
      expect(
        await post({
          ...genuine,
          'webhook-signature': signHeaders({ id: 'evt_doccheck', body, secret: 'whsec_' + Buffer.alloc(32, 7).toString('base64') })[
            'webhook-signature'
          ],
        }),
      ).toBe(400);
      expect(await post({ ...genuine, 'webhook-id': 'evt_other' })).toBe(400);
      expect(await post(signHeaders({ id: 'evt_doccheck', body, secret, timestamp: Math.floor(Date.now() / 1000) - 3600 }))).toBe(400);
      expect(await post({})).toBe(400);
    },
  );
});
