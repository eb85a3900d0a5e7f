/** Normalise anything thrown into an Error, once, so callers never inspect `unknown`. */
export function coerceError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === 'string' ? value : JSON.stringify(value));
}

/** A short, secret-free description of a failure for logs and the attempt log. */
export function describeError(value: unknown): string {
  const err = coerceError(value);
  const code = (err as { code?: unknown }).code;
  const cause = (err as { cause?: unknown }).cause;
  const causeCode = cause && typeof cause === 'object' ? (cause as { code?: unknown }).code : undefined;
  const shownCode = typeof code === 'string' ? code : typeof causeCode === 'string' ? causeCode : undefined;
  return shownCode && !err.message.includes(shownCode) ? `${shownCode}: ${err.message}` : err.message;
}
