/**
 * Encryption keys for webhook secrets and headers at rest: `RELAY_ENCRYPTION_KEYS` (newest first: the first
 * encrypts, all decrypt), plaintext values encrypted at start once a key is set, a warning at start while
 * values are stored in plaintext, and `raqeem-relay rotate-key` re-encrypting everything with the newest key.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { QueryTypes } from 'sequelize';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { ConfigError, loadConfig } from '../hosts/shared/config.js';
import { secretsOf } from '../hosts/shared/logging.js';
import { KeyRing, parseEncryptionKeys } from '../plugins/webhooks/keys.js';
import { decryptSecret, encryptSecret, parseEncryptionKey } from '../plugins/webhooks/secrets.js';
import { webhooksTarget } from '../plugins/webhooks/index.js';
import { DIALECTS } from './helpers/db.js';
import { metricEvent } from './helpers/relay.js';
import { killAll, runCli } from './helpers/processes.js';
import { eventually, startSink } from './helpers/sink.js';
import type { Sink } from './helpers/sink.js';
import { FAST, captureLogger, webhookFixture } from './helpers/webhooks.js';
import type { WebhookFixture } from './helpers/webhooks.js';

const A = 'aa'.repeat(32);
const B = Buffer.alloc(32, 0xbb).toString('base64');
const C = 'cc'.repeat(32);

describe('KeyRing', () => {
  it('encrypts with the first key and decrypts with any', () => {
    const ring = parseEncryptionKeys(`${B}, ${A}`);
    const sealed = ring.seal('whsec_x');
    expect(decryptSecret(sealed, parseEncryptionKey(B))).toBe('whsec_x');
    expect(() => decryptSecret(sealed, parseEncryptionKey(A))).toThrow();
    const old = encryptSecret('whsec_old', parseEncryptionKey(A));
    expect(ring.open(old, 'the secret of webhook wh_1')).toBe('whsec_old');
    expect(ring.current(old)).toBe(false);
    expect(ring.current(sealed)).toBe(true);
    expect(ring.open('whsec_plain', 'x')).toBe('whsec_plain');
  });

  it('says which value cannot be decrypted, never the value', () => {
    const sealed = parseEncryptionKeys(C).seal('whsec_secret_value');
    const err = (() => {
      try {
        parseEncryptionKeys(`${A} ${B}`).open(sealed, 'the secret of webhook wh_9');
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err?.message).toBe('the secret of webhook wh_9 could not be decrypted with any key in RELAY_ENCRYPTION_KEYS');
    expect(() => new KeyRing([]).open(sealed, 'the headers of webhook wh_9')).toThrow(/no encryption key is configured/);
  });

  it('accepts commas and whitespace, and names the bad key by position without echoing it', () => {
    expect(parseEncryptionKeys(`${A},${B}\n${C}`).keys).toHaveLength(3);
    expect(parseEncryptionKeys(undefined).configured).toBe(false);
    expect(() => parseEncryptionKeys(`${A},not-a-key-at-all`)).toThrow(/^Encryption key 2 of 2: .*64 hex characters/);
    try {
      parseEncryptionKeys(`${A},not-a-key-at-all`);
    } catch (e) {
      expect((e as Error).message).not.toContain('not-a-key-at-all');
      expect((e as Error).message).not.toContain(A);
    }
  });
});

describe('RELAY_ENCRYPTION_KEYS configuration', () => {
  it('wins over RELAY_ENCRYPTION_KEY, and every key is redacted from logs', () => {
    const c = loadConfig('devices', { RELAY_ENCRYPTION_KEYS: `${B}, ${A}`, RELAY_ENCRYPTION_KEY: C });
    expect(parseEncryptionKeys(c.encryptionKey).keys.map((k) => k.toString('hex'))).toEqual([Buffer.from(B, 'base64').toString('hex'), A]);
    expect(secretsOf(c)).toEqual(expect.arrayContaining([A, B]));
    expect(loadConfig('devices', { RELAY_ENCRYPTION_KEY: C }).encryptionKey).toBe(C);
  });

  it('refuses a bad key at start with one message naming the variable and the position, never the value', () => {
    const attempt = (env: Record<string, string>) => {
      try {
        loadConfig('devices', env);
      } catch (err) {
        return err as Error;
      }
      return null;
    };
    const err = attempt({ RELAY_ENCRYPTION_KEYS: `${A},tooshort-secret-ish` });
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.message).toMatch(/^Invalid configuration: RELAY_ENCRYPTION_KEYS: Encryption key 2 of 2: /);
    expect(err!.message).not.toContain('tooshort-secret-ish');
    expect(err!.message).not.toContain(A);
    expect(attempt({ RELAY_ENCRYPTION_KEY: 'nope-nope-nope' })?.message).toMatch(/^Invalid configuration: RELAY_ENCRYPTION_KEY: /);
  });
});

describe.each(DIALECTS)('encryption keys at rest (%s)', (dialect) => {
  let f: WebhookFixture;
  const sinks: Sink[] = [];
  afterEach(async () => {
    await killAll();
    await f?.cleanup();
    await Promise.all(sinks.splice(0).map((s) => s.close()));
  });

  const stored = async (id: string) =>
    (
      await f.fx.tdb.db.sequelize.query<{ secret: string; headers: string | null; previous_secrets: string | null }>(
        'SELECT secret, headers, previous_secrets FROM relay_webhooks WHERE id = :id',
        { replacements: { id }, type: QueryTypes.SELECT },
      )
    )[0]!;

  /** Stop the fixture's relay and start another on the same database with these keys. */
  const restart = async (encryptionKey: string | undefined) => {
    await Promise.all(f.fx.relays.map((r) => r.stop()));
    const { logger, logs } = captureLogger();
    const webhooks = webhooksTarget({ db: f.fx.tdb.db, logger, ...FAST, encryptionKey });
    const relay = await f.fx.make({ targets: [webhooks], logger, dispatcher: { pollIntervalMs: 50 } });
    await relay.start();
    return { relay, webhooks, logs };
  };

  it('warns at start while secrets are in plaintext, encrypts them once a key is set, and rotates to a new key', async () => {
    f = await webhookFixture(dialect);
    const s = await startSink();
    sinks.push(s);
    const created = await f.api('POST', '/webhooks', { url: s.url, events: ['*'], headers: { Authorization: 'Bearer tok-71c9e2' } });
    const id = created.body.id as string;
    // Two previous secrets as well, so every stored kind of value is covered.
    await f.api('POST', `/webhooks/${id}/rotate-secret`);
    const current = (await f.api('POST', `/webhooks/${id}/rotate-secret`)).body.secret as string;
    expect((await stored(id)).secret).toBe(current);

    // No key: a warning at start that says what to do, and nothing changes.
    const plain = await restart(undefined);
    expect(plain.logs.some((l) => l.includes('stored in plaintext') && l.includes('RELAY_ENCRYPTION_KEYS'))).toBe(true);
    expect((await stored(id)).secret).toBe(current);

    // Key A: every value is encrypted at start, deliveries still verify and carry the header.
    const withA = await restart(A);
    const rowA = await stored(id);
    expect(rowA.secret).toMatch(/^enc:v1:/);
    expect(rowA.headers).toMatch(/^enc:v1:/);
    expect(JSON.parse(rowA.previous_secrets!).every((p: { secret: string }) => p.secret.startsWith('enc:v1:'))).toBe(true);
    expect(withA.logs.some((l) => l.includes('stored in plaintext'))).toBe(false);
    await withA.relay.publish(metricEvent());
    await eventually(() => s.requests.length === 1);
    const wh = new StandardWebhook(current);
    expect(() => wh.verify(s.requests[0]!.body, s.requests[0]!.headers as Record<string, string>)).not.toThrow();
    expect(String(s.requests[0]!.headers['webhook-signature']).split(' ')).toHaveLength(3);
    expect(s.requests[0]!.headers.authorization).toBe('Bearer tok-71c9e2');

    // Keys "B, A": A still decrypts; rotate-key (the plugin's reseal) moves every value to B.
    const withBA = await restart(`${B},${A}`);
    expect(await withBA.webhooks.reseal({ all: true })).toBe(1);
    expect(await withBA.webhooks.reseal({ all: true })).toBe(0);
    const ringB = parseEncryptionKeys(B);
    const rowB = await stored(id);
    expect(ringB.current(rowB.secret)).toBe(true);
    expect(ringB.current(rowB.headers!)).toBe(true);

    // Only B now: everything still decrypts, and the secret answer is unchanged.
    const onlyB = await restart(B);
    expect((await onlyB.webhooks.secret(id))?.secret).toBe(current);
    // And A alone no longer can: the old key is really out of use.
    const onlyA = await restart(A);
    await expect(onlyA.webhooks.secret(id)).rejects.toThrow(/could not be decrypted with any key/);
  });

  it('raqeem-relay rotate-key re-encrypts with the first key in RELAY_ENCRYPTION_KEYS; without a key it exits 1', async () => {
    f = await webhookFixture(dialect, { plugin: { encryptionKey: A } });
    const created = await f.api('POST', '/webhooks', { url: 'http://127.0.0.1:9/', events: ['*'], headers: { 'X-Api-Key': 'k-93be' } });
    const id = created.body.id as string;
    // A second endpoint whose secret is in plaintext (stored before any key was set): counted too.
    const plain = await f.api('POST', '/webhooks', { url: 'http://127.0.0.1:9/', events: ['*'] });
    await f.fx.tdb.db.sequelize.query('UPDATE relay_webhooks SET secret = :secret WHERE id = :id', {
      replacements: { id: plain.body.id, secret: plain.body.secret },
    });
    await Promise.all(f.fx.relays.map((r) => r.stop()));

    const missing = await runCli(['rotate-key'], { DATABASE_URL: f.fx.tdb.url });
    expect(missing.code).toBe(1);
    expect(missing.output.trim().split('\n')).toHaveLength(1);
    expect(missing.output).toContain('RELAY_ENCRYPTION_KEYS');

    const r = await runCli(['rotate-key'], { DATABASE_URL: f.fx.tdb.url, RELAY_ENCRYPTION_KEYS: `${C},${A}` });
    expect(r.output).toContain('re-encrypted the secrets and headers of 2 webhook endpoints with the newest key');
    expect(r.code).toBe(0);
    expect(r.output).not.toContain(C);
    const row = await stored(id);
    const ringC = parseEncryptionKeys(C);
    expect(ringC.open(row.secret, 'secret')).toBe(created.body.secret);
    expect(JSON.parse(ringC.open(row.headers!, 'headers'))).toEqual({ 'X-Api-Key': 'k-93be' });
    expect(() => parseEncryptionKeys(A).open(row.secret, 'secret')).toThrow(/could not be decrypted/);
    expect(ringC.open((await stored(plain.body.id)).secret, 'secret')).toBe(plain.body.secret);
    expect(ringC.current((await stored(plain.body.id)).secret)).toBe(true);
  });
});
