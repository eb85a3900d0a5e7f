/** Secrets at rest (AES-256-GCM) and `RELAY_ENCRYPTION_KEY` parsing, the webhooks plugin's own crypto. */
import { describe, it, expect } from 'vitest';
import { generateSecret } from '../lib/signing.js';
import { decryptSecret, encryptSecret, parseEncryptionKey } from '../plugins/webhooks/secrets.js';

const SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

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
