import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateSecret } from '../lib/signing.js';
import { mentorTarget } from '../plugins/mentor.js';
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

describe('forwarding logs', () => {
  let fx: RelayFixture;
  let sink: Sink;
  beforeEach(async () => {
    fx = await relayFixture('sqlite');
    sink = await startSink();
  });
  afterEach(async () => {
    await fx.cleanup();
    await sink.close();
  });

  it('logs success at info, each failed attempt at warn with "attempt n/N", dead at error, and never the secret', async () => {
    const secret = generateSecret();
    const { lines, logger } = capture();
    sink.respond((r) => {
      const body = JSON.parse(r.body);
      if (body.deviceid === 'dev-dead') return { status: 400 };
      return sink.requests.filter((x) => JSON.parse(x.body).deviceid === 'dev-ok').length < 2 ? { status: 500 } : { status: 200 };
    });
    const relay = await fx.make({
      targets: [mentorTarget({ url: sink.url, backoffBaseMs: 20, signingSecret: secret })],
      logger,
      dispatcher: { pollIntervalMs: 50 },
    });
    await relay.start();
    const ok = metricEvent('dev-ok');
    const dead = metricEvent('dev-dead');
    await relay.publish(ok);
    await relay.publish(dead);
    await eventually(
      async () =>
        (await relay.listDeliveries({ status: 'succeeded' })).data.length === 1 &&
        (await relay.listDeliveries({ status: 'dead' })).data.length === 1,
    );
    await relay.stop();

    const forwards = lines.filter((l) => l.eventId);
    const warn = forwards.find((l) => l.level === 40 && l.eventId === ok.id);
    expect(warn?.msg).toBe('failed to forward metric.submitted to mentor (attempt 1/4), will retry');
    const info = forwards.find((l) => l.level === 30 && l.eventId === ok.id);
    expect(info?.msg).toBe('forwarded metric.submitted to mentor');
    const error = forwards.find((l) => l.level === 50 && l.eventId === dead.id);
    expect(error?.msg).toBe('forward of metric.submitted to mentor is dead, permanent failure: HTTP 400');
    for (const l of forwards) expect(l).toMatchObject({ type: 'metric.submitted', target: 'mentor', deviceid: expect.any(String) });
    const all = JSON.stringify(lines);
    expect(all).not.toContain(secret);
    expect(all).not.toContain(secret.slice('whsec_'.length));
    // And the requests were signed with it.
    expect(sink.requests[0]!.headers['webhook-signature']).toMatch(/^v1,/);
  });
});
