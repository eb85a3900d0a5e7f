/**
 * The one string schema every request field goes through (hosts, plugins, management routes). Control
 * characters are refused at the edge: NUL is an error in PostgreSQL text and an "unrecognized token" in
 * SQLite statements, and the others (escape sequences, form feeds, DEL) only ever come from a broken or
 * hostile client and end up in terminals, logs and dashboards.
 *
 * Decision: names, ids, URLs, paths and query parameters are single-line (`safeString`: no C0 control
 * character, no DEL, no C1 control). Free text a person or a program wrote (`freeText`: descriptions, alert
 * messages, command text and results) may also hold tab, line feed and carriage return. Both refuse lone
 * UTF-16 surrogates, which cannot be stored as UTF-8 and would silently become U+FFFD.
 */
import { z } from 'zod';

/** C0 controls, DEL and C1 controls. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** The same without tab, line feed and carriage return. */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_EXCEPT_WHITESPACE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

export const CONTROL_MESSAGE = 'must not contain NUL or other control characters';
export const FREE_TEXT_MESSAGE = 'must not contain NUL or control characters other than tab, line feed and carriage return';
export const SURROGATE_MESSAGE = 'must be valid Unicode (no lone surrogates)';

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const wellFormed = (s: string): boolean => !LONE_SURROGATE.test(s);

/** A single-line string of at most `max` characters: no control characters at all. */
export const safeString = (max = 1024) =>
  z
    .string()
    .max(max)
    .refine((s) => !CONTROL.test(s), CONTROL_MESSAGE)
    .refine(wellFormed, SURROGATE_MESSAGE);

/** Free text of at most `max` characters: tab, line feed and carriage return allowed, other controls not. */
export const freeText = (max = 10_000) =>
  z
    .string()
    .max(max)
    .refine((s) => !CONTROL_EXCEPT_WHITESPACE.test(s), FREE_TEXT_MESSAGE)
    .refine(wellFormed, SURROGATE_MESSAGE);

/** Whether a string would pass `safeString` (for hand-written checks of path segments and headers). */
export const isSafeString = (s: string): boolean => !CONTROL.test(s) && wellFormed(s);
