/**
 * Subscription patterns: `*`, an exact event type, or `prefix.*`. Patterns are checked against the event
 * catalogue at registration, so a typo (`metrics.*`) is a 422 rather than an endpoint that never receives.
 */
const TYPE = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$/;
const PREFIX = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*\.\*$/;

/** Why `pattern` is not a usable subscription, or null when it is. */
export function eventPatternProblem(pattern: string, known: readonly string[]): string | null {
  if (pattern === '*') return null;
  const list = known.join(', ');
  if (PREFIX.test(pattern)) {
    const prefix = pattern.slice(0, -1);
    return known.some((t) => t.startsWith(prefix)) ? null : `${pattern} matches no event type (known types: ${list})`;
  }
  if (!TYPE.test(pattern)) return `${JSON.stringify(pattern)} is not an event type, "*" or "prefix.*"`;
  return known.includes(pattern) ? null : `unknown event type ${pattern} (known types: ${list})`;
}
