/** The logging surface the relay needs; a pino logger fits it. The host injects one. */
import pino from 'pino';

/** The logging surface the relay needs (debug, info, warn, error, child); a pino logger fits it. */
export interface Logger {
  /** Log at debug level: structured fields first, then the message (pino's order). */
  debug(obj: object, msg?: string): void;
  /** Log at info level. */
  info(obj: object, msg?: string): void;
  /** Log at warn level. */
  warn(obj: object, msg?: string): void;
  /** Log at error level. */
  error(obj: object, msg?: string): void;
  /** A logger that adds `bindings` to every line. */
  child(bindings: object): Logger;
}

const noop = () => {};
/** A logger that drops everything: `createRelay({ ..., logger: silentLogger })` turns the default stderr logger off. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop, child: () => silentLogger };

/**
 * The logger of a relay given none: JSON lines at `warn` and above on stderr, so an embedding program
 * hears about dead deliveries, open circuits and dispatcher errors without configuring anything (a
 * library that is silent by default lets a dead delivery pass as success). Written synchronously, so a
 * line logged just before the program exits is not lost. Pass `logger: silentLogger` to turn it off.
 */
export function defaultLogger(): Logger {
  return pino({ level: 'warn', base: { name: 'raqeem-relay' } }, pino.destination({ dest: 2, sync: true }));
}
