/**
 * Issue 17, items 1, 2 and 6: what an operator sees without opening the delivery log. A signing-secret
 * mismatch logs the receiver's reason with the failure; a relay given no logger still says on stderr that a
 * delivery is dead or a circuit is open; the queue and dead-letter gauges export zeros, not nothing.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { generateSecret } from '../lib/signing.js';
import { mentorTarget } from '../plugins/mentor.js';
import { DIALECTS } from './helpers/db.js';
import { startMentorFixture } from './helpers/mentor.js';
import type { MentorFixture } from './helpers/mentor.js';
import { REPO_ROOT } from './helpers/processes.js';
import { metricEvent, relayFixture } from './helpers/relay.js';
import type { RelayFixture } from './helpers/relay.js';
import { eventually, startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';

function capture() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, logger: pino({ level: 'debug' }, stream) };
}

describe.each(DIALECTS)('a signing-secret mismatch (%s)', (dialect) => {
  let fx: RelayFixture | undefined;
  let mentor: MentorFixture | undefined;
  afterEach(async () => {
    await fx?.cleanup();
    await mentor?.close();
    fx = mentor = undefined;
  });

  it("logs the mentor's reason and WWW-Authenticate with the dead delivery, never the secrets", async () => {
    const mentorSecret = generateSecret();
    const relaySecret = generateSecret();
    mentor = await startMentorFixture(dialect, { MENTOR_SIGNING_SECRET: mentorSecret });
    fx = await relayFixture(dialect);
    const { lines, logger } = capture();
    const relay = await fx.make({ targets: [mentorTarget({ url: mentor.url, signingSecret: relaySecret, backoffBaseMs: 20 })], logger });
    await relay.start();
    const event = metricEvent('dev-mismatch');
    await relay.publish(event);
    await eventually(async () => (await relay.listDeliveries({ status: 'dead' })).data.length === 1);
    await relay.stop();

    const dead = lines.find((l) => l.level === 50 && l.eventId === event.id);
    expect(dead?.msg).toMatch(/^forward of metric\.submitted to mentor is dead, permanent failure: HTTP 401 \(receiver: .+\)$/);
    expect(dead?.msg).toContain('no_matching_signature');
    expect(dead?.msg).toContain('WWW-Authenticate: Webhook');
    expect(dead).toMatchObject({ error: 'HTTP 401', receiver: expect.stringContaining('no_matching_signature') });
    const all = JSON.stringify(lines);
    for (const s of [mentorSecret, relaySecret]) {
      expect(all).not.toContain(s);
      expect(all).not.toContain(s.slice('whsec_'.length));
    }
  });
});

describe('a failing receiver', () => {
  let fx: RelayFixture | undefined;
  let sink: Sink | undefined;
  afterEach(async () => {
    await fx?.cleanup();
    await sink?.close();
    fx = sink = undefined;
  });

  it('a retried failure carries the reason too; an empty or HTML answer adds nothing', async () => {
    sink = await startSink();
    sink.respond((_r, i) =>
      i === 0
        ? { status: 503, body: '{"type":"about:blank","title":"Service Unavailable","detail":"warming up"}' }
        : i === 1
          ? { status: 502, body: '<html><body>Bad gateway</body></html>', headers: { 'content-type': 'text/html' } }
          : { status: 200 },
    );
    fx = await relayFixture('sqlite');
    const { lines, logger } = capture();
    const relay = await fx.make({
      targets: [mentorTarget({ url: sink.url, backoffBaseMs: 10, circuit: { failureThreshold: 10 } })],
      logger,
    });
    await relay.start();
    await relay.publish(metricEvent('dev-retry'));
    await eventually(async () => (await relay.listDeliveries({ status: 'succeeded' })).data.length === 1);
    await relay.stop();
    const warns = lines.filter((l) => l.level === 40 && l.eventId).map((l) => l.msg);
    expect(warns).toEqual([
      'failed to forward metric.submitted to mentor (attempt 1/4), will retry',
      'failed to forward metric.submitted to mentor (attempt 2/4), will retry',
    ]);
    const first = lines.find((l) => l.level === 40 && l.eventId);
    expect(first).toMatchObject({ error: 'HTTP 503', receiver: 'warming up' });
    expect(lines.filter((l) => l.level === 40 && l.eventId)[1]).not.toHaveProperty('receiver');
  });
});

/** Run a TypeScript program the way an embedding application would: its own process, stdout and stderr apart. */
function runScript(file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('a relay given no logger', () => {
  let sink: Sink | undefined;
  let dir: string | undefined;
  afterEach(async () => {
    await sink?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    sink = dir = undefined;
  });

  it('says on stderr that a delivery is dead and that a circuit opened, while the program exits 0', async () => {
    // The mentor refuses the record (422, as for the README's old snippet); a second target is down.
    sink = await startSink();
    sink.respond(() => ({
      status: 422,
      body: '{"type":"about:blank","title":"Unprocessable Content","status":422,"detail":"The request body failed validation: deviceid"}',
      headers: { 'content-type': 'application/problem+json' },
    }));
    dir = mkdtempSync(path.join(tmpdir(), 'relay-nologger-'));
    const lib = (p: string) => pathToFileURL(path.join(REPO_ROOT, p)).href;
    const script = path.join(dir, 'embed.mts');
    writeFileSync(
      script,
      `
import { createRelay, createEvent, openDatabase } from ${JSON.stringify(lib('lib/index.ts'))};
import { mentorTarget } from ${JSON.stringify(lib('plugins/mentor.ts'))};
import { httpTarget } from ${JSON.stringify(lib('plugins/http.ts'))};
import { exponentialBackoff } from ${JSON.stringify(lib('lib/retry.ts'))};

const db = openDatabase(${JSON.stringify(`sqlite:${path.join(dir, 'app.sqlite')}`)});
const down = httpTarget({
  name: 'down',
  baseUrl: 'http://127.0.0.1:9',
  routes: { 'metric.submitted': '/m' },
  retry: exponentialBackoff({ retries: 5, baseMs: 10 }),
  circuit: { failureThreshold: 1, cooldownMs: 60_000 },
});
const relay = await createRelay({ db, targets: [mentorTarget({ url: ${JSON.stringify(sink.url)} }), down] });
await relay.start();
await relay.publish(createEvent({ type: 'metric.submitted', deviceid: 'd1', data: { metricid: 'm1' } }));
const seen = new Set<string>();
relay.events.on('delivery:dead', () => seen.add('dead'));
relay.events.on('circuit:open', () => seen.add('open'));
while (seen.size < 2) await new Promise((r) => setTimeout(r, 20));
await relay.stop({ timeoutMs: 1000 });
await db.close();
`,
    );
    const { code, stdout, stderr: err } = await runScript(script);
    expect(code, err).toBe(0);
    expect(stdout).toBe('');
    const stderr = err
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { level: number; name: string; msg: string });
    expect(stderr.find((l) => l.level === 50)?.msg).toBe(
      'forward of metric.submitted to mentor is dead, permanent failure: HTTP 422 (receiver: The request body failed validation: deviceid)',
    );
    expect(stderr.some((l) => l.level === 40 && l.msg === 'circuit for down is open')).toBe(true);
    expect(stderr.every((l) => l.level >= 40 && l.name === 'raqeem-relay')).toBe(true);
  });
});

describe.each(DIALECTS)('queue gauges with nothing to count (%s)', (dialect) => {
  let fx: RelayFixture | undefined;
  afterEach(async () => {
    await fx?.cleanup();
    fx = undefined;
  });

  it('export 0 for every target and status instead of no sample', async () => {
    fx = await relayFixture(dialect);
    const registry = new Registry();
    await fx.make({ targets: [mentorTarget({ url: 'http://127.0.0.1:9' })], registry, listen: false });
    const text = await registry.metrics();
    expect(text).toContain('forward_queue_depth{target="mentor",status="pending"} 0');
    expect(text).toContain('forward_queue_depth{target="mentor",status="inflight"} 0');
    expect(text).toContain('forward_dead_letters{target="mentor"} 0');
  });
});
