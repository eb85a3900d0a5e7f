/**
 * AES-256-GCM encryption of webhook signing secrets at rest (`RELAY_ENCRYPTION_KEY`). Kept out of
 * `lib/signing.ts` so a receiver importing `raqeem-relay/signing` to verify gets sign/verify only.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** Marks a stored value as encrypted; values without it are plaintext (stored before a key was set). */
export const ENCRYPTED_PREFIX = 'enc:v1:';
const AES_KEY_BYTES = 32;
const GCM_IV_BYTES = 12;
const GCM_TAG_BYTES = 16;

/**
 * Encrypt a signing secret for storage with AES-256-GCM and a random 12-byte IV.
 * @param key 32 bytes, usually from {@link parseEncryptionKey}.
 * @returns `enc:v1:<base64 iv>:<base64 tag>:<base64 ciphertext>`.
 */
export function encryptSecret(plain: string, key: Buffer): string {
  assertAesKey(key);
  const iv = randomBytes(GCM_IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  const ciphertext = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
  const tag = cipher.getAuthTag();
  return `${ENCRYPTED_PREFIX}${iv.toString('base64')}:${tag.toString('base64')}:${ciphertext.toString('base64')}`;
}

/**
 * Decrypt a value written by {@link encryptSecret}. Values without the `enc:v1:` prefix are returned
 * unchanged, so secrets stored in plaintext before encryption was configured keep working.
 * @throws Error when the value is malformed, the key is wrong or the value was tampered with.
 */
export function decryptSecret(stored: string, key: Buffer): string {
  if (!stored.startsWith(ENCRYPTED_PREFIX)) return stored;
  assertAesKey(key);
  const parts = stored.slice(ENCRYPTED_PREFIX.length).split(':');
  const [iv, tag, ciphertext] = parts.map((part) => Buffer.from(part, 'base64'));
  if (parts.length !== 3 || !iv || !tag || !ciphertext || iv.length !== GCM_IV_BYTES || tag.length !== GCM_TAG_BYTES) {
    throw new Error('Encrypted secret is malformed; expected enc:v1:<iv>:<tag>:<ciphertext>');
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv, { authTagLength: GCM_TAG_BYTES });
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]).toString('utf8');
  } catch (cause) {
    throw new Error('Could not decrypt secret: the encryption key is wrong or the stored value was altered', {
      cause,
    });
  }
}

/**
 * Parse a 32-byte AES key given as 64 hex characters or as base64 (standard or URL-safe).
 * @throws Error saying how to generate a valid key; the message never includes the value.
 */
export function parseEncryptionKey(value: string): Buffer {
  const trimmed = value.trim();
  let key: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(trimmed)) {
    key = Buffer.from(trimmed, 'hex');
  } else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(trimmed)) {
    key = Buffer.from(trimmed, 'base64');
  }
  if (key?.length !== AES_KEY_BYTES) {
    throw new Error(
      `Encryption key must be 32 bytes written as 64 hex characters or base64 (got ${trimmed.length} characters); ` +
        'generate one with `openssl rand -hex 32`',
    );
  }
  return key;
}

function assertAesKey(key: Buffer): void {
  if (key.length !== AES_KEY_BYTES) {
    throw new Error('Encryption key must be 32 bytes; build it with parseEncryptionKey()');
  }
}
