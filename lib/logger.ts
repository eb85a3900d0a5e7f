/** The logging surface the relay needs; a pino logger fits it. The host injects one. */
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
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop, child: () => silentLogger };
