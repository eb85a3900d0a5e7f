/**
 * The remote-command allow-list, in one place for both hosts: the mentor refuses to create a command outside
 * it, and the devices host refuses to queue one (whether a caller creates it there or the mentor forwards
 * it), so a device never receives a command outside the list, even from a compromised mentor.
 *
 * The first whitespace-separated word of `command_text` must be one of the names, exactly (case-sensitive:
 * Raqeem's backend lower-cases first; we do not, so `GET_INFO` is refused rather than reinterpreted).
 */
import { HttpProblem } from '../../lib/http/problem.js';

/** Commands a device agent knows (Raqeem's list); anything else is refused before it is stored or sent. */
export const COMMAND_WHITELIST = ['get_info', 'status', 'restart', 'get_processes', 'get_logs', 'restart_service', 'screenshot'] as const;

const ALLOWED = new Set<string>(COMMAND_WHITELIST);

/** The command's verb: its first word. */
export const commandVerb = (commandText: string): string => commandText.trim().split(/\s+/, 1)[0] ?? '';

export const isCommandAllowed = (commandText: string): boolean => ALLOWED.has(commandVerb(commandText));

/** Throw the 400 (detail says "not allowed", `errors` names `command_text`) unless the command is allowed. */
export function assertCommandAllowed(commandText: string): void {
  if (isCommandAllowed(commandText)) return;
  const verb = commandVerb(commandText);
  throw new HttpProblem(
    400,
    `Command ${JSON.stringify(verb.slice(0, 64))} is not allowed; the first word must be one of ${COMMAND_WHITELIST.join(', ')}`,
    [{ path: 'command_text', message: `must start with one of ${COMMAND_WHITELIST.join(', ')}` }],
  );
}
