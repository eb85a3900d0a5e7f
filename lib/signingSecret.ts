/**
 * Is a signing secret fit to sign with? Kept out of `signing.ts`, the receivers' dependency-free subpath,
 * which publishes sign/verify only.
 */

/** Standard Webhooks keys are 24 to 64 bytes; `generateSecret()` makes 32. */
const MIN_SECRET_BYTES = 24;

/** Where a sender's error points an operator who needs a secret. */
export const SECRET_HINT = 'create one with `npx raqeem-relay secret` or generateSecret()';

/**
 * Why `secret` is not fit to sign with, or null when it is: `whsec_` (optional) and base64 of at least 24
 * bytes, as `generateSecret()` makes. Senders check their secret once at start (a short key is guessable, a
 * malformed one fails every request); `verify` does not, so a receiver keeps accepting what its sender has.
 */
export function secretProblem(secret: string): string | null {
  const encoded = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) return 'must be whsec_ followed by base64';
  const bytes = Buffer.from(encoded, 'base64').length;
  if (bytes < MIN_SECRET_BYTES) return `must be base64 of at least ${MIN_SECRET_BYTES} random bytes (this one decodes to ${bytes})`;
  return null;
}
