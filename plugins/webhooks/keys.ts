/**
 * The encryption key ring for webhook secrets and headers at rest (`RELAY_ENCRYPTION_KEYS`, newest first):
 * the first key encrypts, every key decrypts. Rotation is: put a new key first, restart (values keep
 * decrypting with the old key), run `raqeem-relay rotate-key` (re-encrypts everything with the new key),
 * then drop the old key. Stored values carry no key id: AES-GCM's tag tells a wrong key apart, so trying
 * each key in turn is exact, and a ring holds two or three keys at most.
 */
import { ENCRYPTED_PREFIX, decryptSecret, encryptSecret, parseEncryptionKey } from './secrets.js';

/** Encryption keys for secrets and headers at rest, newest first: the first encrypts, every key decrypts. */
export class KeyRing {
  /** Newest first; empty when no key is configured (values are then stored in plaintext). */
  readonly keys: readonly Buffer[];

  constructor(keys: readonly Buffer[]) {
    this.keys = keys;
  }

  get configured(): boolean {
    return this.keys.length > 0;
  }

  /** Encrypt with the newest key; plaintext when no key is configured. */
  seal(plain: string): string {
    return this.keys[0] ? encryptSecret(plain, this.keys[0]) : plain;
  }

  /**
   * Decrypt with whichever key fits; plaintext values pass through.
   * @throws Error naming `what` (never the value) when no key is configured or none fits.
   */
  open(stored: string, what: string): string {
    if (!stored.startsWith(ENCRYPTED_PREFIX)) return stored;
    if (this.keys.length === 0) throw new Error(`${what} is encrypted but no encryption key is configured (RELAY_ENCRYPTION_KEYS)`);
    let last: unknown;
    for (const key of this.keys) {
      try {
        return decryptSecret(stored, key);
      } catch (err) {
        last = err;
      }
    }
    throw new Error(`${what} could not be decrypted with any key in RELAY_ENCRYPTION_KEYS`, { cause: last });
  }

  /** Is the value encrypted with the newest key? (false for plaintext, an older key, or no key at all) */
  current(stored: string): boolean {
    if (!stored.startsWith(ENCRYPTED_PREFIX) || !this.keys[0]) return false;
    try {
      decryptSecret(stored, this.keys[0]);
      return true;
    } catch {
      return false;
    }
  }
}

/**
 * Parse `RELAY_ENCRYPTION_KEYS` (or the single `RELAY_ENCRYPTION_KEY`): keys separated by commas or
 * whitespace, newest first, each 64 hex characters or base64 of 32 bytes.
 * @throws Error saying which position is wrong; never the value.
 */
export function parseEncryptionKeys(value: string | Buffer | readonly (string | Buffer)[] | undefined): KeyRing {
  if (value === undefined) return new KeyRing([]);
  const list = Buffer.isBuffer(value) ? [value] : typeof value === 'string' ? value.split(/[\s,]+/).filter(Boolean) : value;
  const keys = list.map((k, i) => {
    if (Buffer.isBuffer(k)) return k;
    try {
      return parseEncryptionKey(k);
    } catch (err) {
      throw new Error(`Encryption key ${i + 1} of ${list.length}: ${(err as Error).message}`);
    }
  });
  return new KeyRing(keys);
}
