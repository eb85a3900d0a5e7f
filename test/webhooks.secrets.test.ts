/** Secrets at rest (AES-256-GCM) and `RELAY_ENCRYPTION_KEY` parsing, the webhooks plugin's own crypto. */
import { afterEach, describe, it, expect } from 'vitest';
import { QueryTypes } from 'sequelize';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { runMigrations } from '../lib/migrate.js';
import { relayMigrations } from '../lib/migrations/index.js';
import { generateSecret } from '../lib/signing.js';
import { webhookMigrations } from '../plugins/webhooks/migrations.js';
import { decryptSecret, encryptSecret, parseEncryptionKey } from '../plugins/webhooks/secrets.js';
import { DIALECTS, createTestDatabase } from './helpers/db.js';
import { metricEvent } from './helpers/relay.js';
import { startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';
import { webhookFixture } from './helpers/webhooks.js';
import type { WebhookFixture } from './helpers/webhooks.js';
import { createRelay } from '../lib/relay.js';
import { webhooksTarget } from '../plugins/webhooks/index.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';
const SECRET_OLD = 'whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD';

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  return expect.fail('expected a throw');
}

describe('encryptSecret / decryptSecret', () => {
  const key = parseEncryptionKey('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff');

  it('round-trips a secret', () => {
    const secret = generateSecret();
    const stored = encryptSecret(secret, key);
    expect(stored).toMatch(/^enc:v1:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    expect(stored).not.toContain(secret.slice(6));
    expect(decryptSecret(stored, key)).toBe(secret);
  });

  it('uses a fresh IV each time', () => {
    expect(encryptSecret(SECRET, key)).not.toBe(encryptSecret(SECRET, key));
  });

  it('passes plaintext legacy values through', () => {
    expect(decryptSecret(SECRET, key)).toBe(SECRET);
  });

  it('detects a tampered ciphertext', () => {
    const [prefix, version, iv, tag, ciphertext] = encryptSecret(SECRET, key).split(':');
    const bytes = Buffer.from(ciphertext!, 'base64');
    bytes[0] = bytes[0]! ^ 1;
    const tampered = [prefix, version, iv, tag, bytes.toString('base64')].join(':');
    expect(() => decryptSecret(tampered, key)).toThrow(/wrong or the stored value was altered/);
  });

  it('detects a tampered tag', () => {
    const [prefix, version, iv, tag, ciphertext] = encryptSecret(SECRET, key).split(':');
    const bytes = Buffer.from(tag!, 'base64');
    bytes[0] = bytes[0]! ^ 1;
    const tampered = [prefix, version, iv, bytes.toString('base64'), ciphertext].join(':');
    expect(() => decryptSecret(tampered, key)).toThrow(/wrong or the stored value was altered/);
  });

  it('rejects the wrong key', () => {
    const other = parseEncryptionKey('ff'.repeat(32));
    expect(() => decryptSecret(encryptSecret(SECRET, key), other)).toThrow(/encryption key is wrong/);
  });

  it('rejects a malformed value', () => {
    expect(() => decryptSecret('enc:v1:abc', key)).toThrow(/malformed/);
  });

  it('rejects a key that is not 32 bytes', () => {
    expect(() => encryptSecret(SECRET, Buffer.alloc(16))).toThrow(/32 bytes/);
  });
});

describe('parseEncryptionKey', () => {
  const raw = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex');

  it('accepts 64 hex characters', () => {
    expect(parseEncryptionKey(raw.toString('hex'))).toEqual(raw);
    expect(parseEncryptionKey(raw.toString('hex').toUpperCase())).toEqual(raw);
  });

  it('accepts base64 and base64url of 32 bytes', () => {
    expect(parseEncryptionKey(raw.toString('base64'))).toEqual(raw);
    expect(parseEncryptionKey(raw.toString('base64url'))).toEqual(raw);
  });

  it('ignores surrounding whitespace', () => {
    expect(parseEncryptionKey(` ${raw.toString('hex')}\n`)).toEqual(raw);
  });

  it.each([
    ['too short hex', 'abcdef0123456789'],
    ['63 hex characters', raw.toString('hex').slice(1)],
    ['base64 of 16 bytes', Buffer.alloc(16, 7).toString('base64')],
    ['base64 of 48 bytes', Buffer.alloc(48, 7).toString('base64')],
    ['a passphrase', 'correct horse battery staple and more words'],
    ['empty', ''],
  ])('rejects %s without echoing it', (_label, value) => {
    const { message } = thrown(() => parseEncryptionKey(value));
    expect(message).toMatch(/64 hex characters or base64/);
    if (value) expect(message).not.toContain(value);
  });
});

describe.each(DIALECTS)('secret rotation: up to 3 secrets, each for its own 24 h (%s)', (dialect) => {
  let f: WebhookFixture;
  const sinks: Sink[] = [];
  afterEach(async () => {
    await f?.cleanup();
    await Promise.all(sinks.splice(0).map((s) => s.close()));
  });

  const signatures = (s: Sink, i: number) => String(s.requests[i]!.headers['webhook-signature']).split(' ');
  const verifies = (secret: string, s: Sink, i: number) => {
    try {
      new StandardWebhook(secret).verify(s.requests[i]!.body, s.requests[i]!.headers as Record<string, string>);
      return true;
    } catch {
      return false;
    }
  };

  it('two rotations within 24 h keep all three secrets signing; a third is a 409 that changes nothing', async () => {
    f = await webhookFixture(dialect);
    const s = await startSink();
    sinks.push(s);
    const created = await f.api('POST', '/webhooks', { url: s.url, events: ['*'] });
    const id = created.body.id as string;
    const first = created.body.secret as string;
    const second = (await f.api('POST', `/webhooks/${id}/rotate-secret`)).body.secret as string;
    const rotated = await f.api('POST', `/webhooks/${id}/rotate-secret`);
    expect(rotated.status).toBe(200);
    const third = rotated.body.secret as string;
    expect(rotated.body.previous_secrets_expire_at).toHaveLength(2);
    expect(rotated.body.previous_secret_expires_at).toBe(rotated.body.previous_secrets_expire_at[0]);
    for (const at of rotated.body.previous_secrets_expire_at as string[]) {
      const left = Date.parse(at) - Date.now();
      expect(left).toBeGreaterThan(23 * 3600_000);
      expect(left).toBeLessThanOrEqual(24 * 3600_000);
    }

    const refused = await f.api('POST', `/webhooks/${id}/rotate-secret`);
    expect(refused.status).toBe(409);
    expect(refused.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(refused.body.detail).toMatch(/already has 2 previous secrets still signing; rotate again after \d{4}-\d\d-\d\dT/);
    expect(refused.text).not.toMatch(/whsec_/);
    expect((await f.api('GET', `/webhooks/${id}/secret`)).body).toEqual(rotated.body);

    await f.relay.publish(metricEvent());
    await s.waitFor(1);
    expect(signatures(s, 0)).toHaveLength(3);
    for (const secret of [first, second, third]) expect(verifies(secret, s, 0)).toBe(true);
  });

  it('rotations racing each other answer 200 or 409, never a 5xx, and never keep more than 3 secrets', async () => {
    f = await webhookFixture(dialect, { paused: true });
    const created = await f.api('POST', '/webhooks', { url: 'http://127.0.0.1:9/', events: ['*'] });
    const id = created.body.id as string;
    const answers = await Promise.all(Array.from({ length: 6 }, () => f.api('POST', `/webhooks/${id}/rotate-secret`)));
    for (const a of answers) expect([200, 409]).toContain(a.status);
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(1);
    expect(answers.filter((a) => a.status === 200).length).toBeLessThanOrEqual(2);
    const now = await f.api('GET', `/webhooks/${id}/secret`);
    expect(now.body.previous_secrets_expire_at.length).toBe(answers.filter((a) => a.status === 200).length);
  });

  it('a previous secret stops signing when its own 24 h are up, which makes room for the next rotation', async () => {
    f = await webhookFixture(dialect);
    const s = await startSink();
    sinks.push(s);
    const created = await f.api('POST', '/webhooks', { url: s.url, events: ['*'] });
    const id = created.body.id as string;
    const first = created.body.secret as string;
    const second = (await f.api('POST', `/webhooks/${id}/rotate-secret`)).body.secret as string;
    const third = (await f.api('POST', `/webhooks/${id}/rotate-secret`)).body.secret as string;
    // 24 h pass for the oldest (the first secret): its expiry is moved into the past.
    const db = f.fx.tdb.db.sequelize;
    const [row] = await db.query<{ previous_secrets: string }>('SELECT previous_secrets FROM relay_webhooks WHERE id = :id', {
      replacements: { id },
      type: QueryTypes.SELECT,
    });
    const list = JSON.parse(row!.previous_secrets) as Array<{ secret: string; expires_at: number }>;
    list[1]!.expires_at = Date.now() - 1;
    await db.query('UPDATE relay_webhooks SET previous_secrets = :list WHERE id = :id', {
      replacements: { id, list: JSON.stringify(list) },
    });
    f.webhooks.invalidate();

    expect((await f.api('GET', `/webhooks/${id}/secret`)).body.previous_secrets_expire_at).toHaveLength(1);
    await f.relay.publish(metricEvent());
    await s.waitFor(1);
    expect(signatures(s, 0)).toHaveLength(2);
    expect(verifies(first, s, 0)).toBe(false);
    expect(verifies(second, s, 0)).toBe(true);

    const fourth = await f.api('POST', `/webhooks/${id}/rotate-secret`);
    expect(fourth.status).toBe(200);
    expect(fourth.body.previous_secrets_expire_at).toHaveLength(2);
    await f.relay.publish(metricEvent());
    await s.waitFor(2);
    expect(signatures(s, 1)).toHaveLength(3);
    for (const secret of [second, third, fourth.body.secret as string]) expect(verifies(secret, s, 1)).toBe(true);
  });

  it('migration 000003 keeps a rotation in progress (previous_secret) signing', async () => {
    const tdb = await createTestDatabase(dialect);
    const s = await startSink();
    sinks.push(s);
    try {
      await runMigrations(tdb.db, relayMigrations, 'relay_migrations');
      await runMigrations(tdb.db, [webhookMigrations[0]!], 'relay_webhooks_migrations');
      const now = Date.now();
      await tdb.db.sequelize.query(
        `INSERT INTO relay_webhooks (id, url, events, enabled, secret, previous_secret, previous_secret_expires_at, created_at, updated_at)
         VALUES ('wh_OLD1', :url, '["*"]', :yes, :secret, :previous, :expires, :now, :now)`,
        { replacements: { url: `${s.url}/`, yes: true, secret: SECRET, previous: SECRET_OLD, expires: now + 3600_000, now } },
      );
      const webhooks = webhooksTarget({ db: tdb.db, allowPrivateNetworks: true });
      const relay = await createRelay({ db: tdb.db, targets: [webhooks], dispatcher: { pollIntervalMs: 50 } });
      try {
        const secret = await webhooks.secret('wh_OLD1');
        expect(secret?.previous_secrets_expire_at).toEqual([new Date(now + 3600_000).toISOString()]);
        await relay.start();
        await relay.publish(metricEvent());
        await s.waitFor(1);
        expect(verifies(SECRET_OLD, s, 0)).toBe(true);
        expect(verifies(SECRET, s, 0)).toBe(true);
      } finally {
        await relay.stop();
      }
    } finally {
      await tdb.drop();
    }
  });
});
