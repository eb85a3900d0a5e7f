import { describe, it, expect } from 'vitest';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';
import { WebhookVerificationError, generateSecret, sign, signHeaders, verify } from '../lib/signing.js';

// Known-answer vector from the Standard Webhooks test suite.
const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const ID = 'msg_p5jXN8AQM9LWM0D4loKWxJek';
const TS = 1614265330;
const BODY = '{"test": 2432232314}';
const EXPECTED = 'v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=';

const nowSec = () => Math.floor(Date.now() / 1000);

function vectorHeaders(): Record<string, string> {
  return { 'webhook-id': ID, 'webhook-timestamp': String(TS), 'webhook-signature': EXPECTED };
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  return expect.fail('expected a throw');
}

function expectReason(fn: () => unknown, reason: WebhookVerificationError['reason']): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(WebhookVerificationError);
    expect((err as WebhookVerificationError).reason).toBe(reason);
    return;
  }
  expect.fail(`expected WebhookVerificationError(${reason})`);
}

describe('sign', () => {
  it('matches the Standard Webhooks known-answer vector', () => {
    expect(sign({ id: ID, timestamp: TS, body: BODY, secret: SECRET })).toBe(EXPECTED);
  });

  it('signs the exact body bytes when given a Buffer', () => {
    expect(sign({ id: ID, timestamp: TS, body: Buffer.from(BODY), secret: SECRET })).toBe(EXPECTED);
  });

  it('accepts a secret without the whsec_ prefix', () => {
    expect(sign({ id: ID, timestamp: TS, body: BODY, secret: SECRET.slice('whsec_'.length) })).toBe(EXPECTED);
  });

  it('emits one space-separated signature per secret', () => {
    const other = generateSecret();
    const header = sign({ id: ID, timestamp: TS, body: BODY, secret: [SECRET, other] });
    const parts = header.split(' ');
    expect(parts).toHaveLength(2);
    expect(parts[0]).toBe(EXPECTED);
    expect(parts[1]).toBe(sign({ id: ID, timestamp: TS, body: BODY, secret: other }));
  });

  it('rejects a non-integer timestamp', () => {
    expect(() => sign({ id: ID, timestamp: 1.5, body: BODY, secret: SECRET })).toThrow(RangeError);
  });

  it('rejects a secret that is not base64 without echoing it', () => {
    const bad = 'whsec_not*base64!';
    const { message } = thrown(() => sign({ id: ID, timestamp: TS, body: BODY, secret: bad }));
    expect(message).toMatch(/whsec_ followed by base64/);
    expect(message).not.toContain('not*base64');
  });

  it('signHeaders fills the three headers and defaults the timestamp to now', () => {
    const before = nowSec();
    const headers = signHeaders({ id: ID, body: BODY, secret: SECRET });
    expect(Object.keys(headers).sort()).toEqual(['webhook-id', 'webhook-signature', 'webhook-timestamp']);
    expect(headers['webhook-id']).toBe(ID);
    expect(Number(headers['webhook-timestamp'])).toBeGreaterThanOrEqual(before);
    expect(Number(headers['webhook-timestamp'])).toBeLessThanOrEqual(nowSec());
    expect(verify(BODY, headers, SECRET)).toEqual({ id: ID, timestamp: Number(headers['webhook-timestamp']) });
  });

  it('signHeaders uses a given timestamp', () => {
    expect(signHeaders({ id: ID, body: BODY, secret: SECRET, timestamp: TS })).toEqual(vectorHeaders());
  });
});

describe('generateSecret', () => {
  it('returns whsec_ and base64 of 32 random bytes by default', () => {
    const secret = generateSecret();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(secret.slice(6), 'base64')).toHaveLength(32);
    expect(generateSecret()).not.toBe(secret);
  });

  it('accepts the bounds 24 and 64', () => {
    expect(Buffer.from(generateSecret(24).slice(6), 'base64')).toHaveLength(24);
    expect(Buffer.from(generateSecret(64).slice(6), 'base64')).toHaveLength(64);
  });

  it.each([23, 65, 0, -1, 32.5, Number.NaN])('rejects %s bytes', (bytes) => {
    expect(() => generateSecret(bytes)).toThrow(RangeError);
  });
});

describe('verify', () => {
  const opts = { now: TS };

  it('accepts the known-answer vector and returns id and timestamp', () => {
    expect(verify(BODY, vectorHeaders(), SECRET, opts)).toEqual({ id: ID, timestamp: TS });
  });

  it('accepts header names in any case', () => {
    const headers = { 'Webhook-Id': ID, 'WEBHOOK-TIMESTAMP': String(TS), 'webhook-Signature': EXPECTED };
    expect(verify(BODY, headers, SECRET, opts).id).toBe(ID);
  });

  it('accepts svix-* headers', () => {
    const headers = { 'svix-id': ID, 'svix-timestamp': String(TS), 'svix-signature': EXPECTED };
    expect(verify(BODY, headers, SECRET, opts).id).toBe(ID);
  });

  it('accepts a Headers object', () => {
    expect(verify(BODY, new Headers(vectorHeaders()), SECRET, opts).id).toBe(ID);
  });

  it('accepts a Buffer body', () => {
    expect(verify(Buffer.from(BODY), vectorHeaders(), SECRET, opts).id).toBe(ID);
  });

  it.each(['webhook-id', 'webhook-timestamp', 'webhook-signature'])('rejects a missing %s', (name) => {
    const headers: Record<string, string | undefined> = vectorHeaders();
    delete headers[name];
    expectReason(() => verify(BODY, headers, SECRET, opts), 'missing_headers');
  });

  it('rejects an empty signature header', () => {
    expectReason(() => verify(BODY, { ...vectorHeaders(), 'webhook-signature': '' }, SECRET, opts), 'missing_headers');
  });

  it('rejects a non-numeric timestamp', () => {
    expectReason(() => verify(BODY, { ...vectorHeaders(), 'webhook-timestamp': '1614265330abc' }, SECRET, opts), 'invalid_timestamp');
  });

  it('rejects a tampered body', () => {
    expectReason(() => verify('{"test": 2432232315}', vectorHeaders(), SECRET, opts), 'no_matching_signature');
  });

  it('rejects a tampered id', () => {
    expectReason(() => verify(BODY, { ...vectorHeaders(), 'webhook-id': 'msg_other' }, SECRET, opts), 'no_matching_signature');
  });

  it('rejects the wrong secret', () => {
    expectReason(() => verify(BODY, vectorHeaders(), generateSecret(), opts), 'no_matching_signature');
  });

  it('rejects a signature with an unknown version', () => {
    const headers = { ...vectorHeaders(), 'webhook-signature': EXPECTED.replace('v1,', 'v2,') };
    expectReason(() => verify(BODY, headers, SECRET, opts), 'no_matching_signature');
  });

  it('rejects a truncated signature', () => {
    const headers = { ...vectorHeaders(), 'webhook-signature': EXPECTED.slice(0, -4) };
    expectReason(() => verify(BODY, headers, SECRET, opts), 'no_matching_signature');
  });

  it('rejects a timestamp older than the tolerance', () => {
    expect(verify(BODY, vectorHeaders(), SECRET, { now: TS + 300 }).id).toBe(ID);
    expectReason(() => verify(BODY, vectorHeaders(), SECRET, { now: TS + 301 }), 'timestamp_too_old');
  });

  it('rejects a timestamp newer than the tolerance', () => {
    expect(verify(BODY, vectorHeaders(), SECRET, { now: TS - 300 }).id).toBe(ID);
    expectReason(() => verify(BODY, vectorHeaders(), SECRET, { now: TS - 301 }), 'timestamp_too_new');
  });

  it('honours a custom tolerance', () => {
    expectReason(() => verify(BODY, vectorHeaders(), SECRET, { now: TS + 11, toleranceSec: 10 }), 'timestamp_too_old');
  });

  it('rejects a real-clock timestamp from 2021 by default', () => {
    expectReason(() => verify(BODY, vectorHeaders(), SECRET), 'timestamp_too_old');
  });

  it('accepts rotation: several signatures where only the second matches', () => {
    const headers = {
      ...vectorHeaders(),
      'webhook-signature': `${sign({ id: ID, timestamp: TS, body: BODY, secret: generateSecret() })} ${EXPECTED}`,
    };
    expect(verify(BODY, headers, SECRET, opts).id).toBe(ID);
  });

  it('accepts rotation: several secrets where only the second matches', () => {
    expect(verify(BODY, vectorHeaders(), [generateSecret(), SECRET], opts).id).toBe(ID);
  });

  it('never puts the secret in the error message', () => {
    expect(thrown(() => verify(BODY, vectorHeaders(), SECRET, { now: TS + 1000 })).message).not.toContain(SECRET.slice(6));
    const { message } = thrown(() => verify('tampered', vectorHeaders(), SECRET, opts));
    expect(message).not.toContain(SECRET.slice(6));
    expect(message).not.toContain(EXPECTED.slice(3));
  });
});

describe('interop with standardwebhooks and svix', () => {
  const secret = generateSecret();
  const body = JSON.stringify({ event: 'delivery.succeeded', data: { id: 42, name: 'جهاز' } });

  it('our signatures verify with standardwebhooks', () => {
    const headers = signHeaders({ id: 'msg_ours', body, secret });
    expect(new StandardWebhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('our signatures verify with svix (webhook-* headers)', () => {
    const headers = signHeaders({ id: 'msg_ours', body, secret });
    expect(new SvixWebhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('our signatures verify with svix (svix-* headers)', () => {
    const h = signHeaders({ id: 'msg_ours', body, secret });
    const headers = {
      'svix-id': h['webhook-id'],
      'svix-timestamp': h['webhook-timestamp'],
      'svix-signature': h['webhook-signature'],
    };
    expect(new SvixWebhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('our rotation signatures verify with each secret in their libraries', () => {
    const previous = generateSecret();
    const headers = signHeaders({ id: 'msg_rot', body, secret: [secret, previous] });
    expect(new StandardWebhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(new StandardWebhook(previous).verify(body, headers)).toEqual(JSON.parse(body));
    expect(new SvixWebhook(previous).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('their libraries reject our signature for a different secret', () => {
    const headers = signHeaders({ id: 'msg_ours', body, secret });
    expect(() => new StandardWebhook(generateSecret()).verify(body, headers)).toThrow(/No matching signature/);
  });

  it('their libraries reject our too-old timestamp', () => {
    const headers = signHeaders({ id: 'msg_old', body, secret, timestamp: nowSec() - 301 - 5 });
    expect(() => new StandardWebhook(secret).verify(body, headers)).toThrow(/too old/);
  });

  it('their libraries reject our too-new timestamp', () => {
    const headers = signHeaders({ id: 'msg_new', body, secret, timestamp: nowSec() + 301 + 5 });
    expect(() => new SvixWebhook(secret).verify(body, headers)).toThrow(/too new/);
  });

  it('standardwebhooks signatures verify with ours', () => {
    const timestamp = nowSec();
    const signature = new StandardWebhook(secret).sign('msg_theirs', new Date(timestamp * 1000), body);
    const headers = { 'webhook-id': 'msg_theirs', 'webhook-timestamp': String(timestamp), 'webhook-signature': signature };
    expect(verify(body, headers, secret)).toEqual({ id: 'msg_theirs', timestamp });
  });

  it('svix signatures verify with ours (svix-* headers)', () => {
    const timestamp = nowSec();
    const signature = new SvixWebhook(secret).sign('msg_svix', new Date(timestamp * 1000), body);
    const headers = { 'svix-id': 'msg_svix', 'svix-timestamp': String(timestamp), 'svix-signature': signature };
    expect(verify(body, headers, secret)).toEqual({ id: 'msg_svix', timestamp });
  });

  it('their signatures agree with ours byte for byte', () => {
    const theirs = new StandardWebhook(secret).sign('msg_x', new Date(TS * 1000), body);
    expect(sign({ id: 'msg_x', timestamp: TS, body, secret })).toBe(theirs);
  });
});
