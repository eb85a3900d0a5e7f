/**
 * What `raqeem-relay --help` and `raqeem-relay <command> --help` print. Kept apart from `cli.ts` (which runs
 * on import) so the docs check can read every command's flags without starting a process.
 */
import { RECONCILE_TYPES } from './devices/reconcile.js';

export const USAGE = `Usage: raqeem-relay <command> [options]

  devices    [--host H]   the devices host (PORT 30080, DATABASE_URL, MENTOR_API_URL, ...)
  mentor     [--host H]   the mentor host (PORT 30081, DATABASE_URL, DEVICES_API_URL, ...)
  worker                  only a dispatcher for the devices outbox at DATABASE_URL: mentor and webhooks
                          (scale-out on PostgreSQL)
  demo       [--devices-port P] [--mentor-port P] [--host H]
                          both hosts on SQLite under DATA_DIR (./data), wired together, signed (npm start)
  simulate   [--devices N] [--rate R] [--duration S] [--url U]
                          N fake devices sending R requests/s in all to a devices host
  reconcile  --since ISO [--types a,b]
                          re-publish stored records to the mentor (safe: the mentor de-duplicates)
  migrate    [devices|mentor]
                          apply migrations and exit (both hosts' databases by default)
  secret     [--bytes N]  print a new signing secret (whsec_..., N random bytes, 32 by default) for
                          MENTOR_SIGNING_SECRET
  rotate-key              re-encrypt webhook secrets and headers with the first key in RELAY_ENCRYPTION_KEYS

Every command takes --help. Configuration is read from the environment; see docs/configuration.md.`;

/** `raqeem-relay <command> --help`: what the command does, its flags and the variables it reads. */
export const HELP: Record<string, string> = {
  devices: `Usage: raqeem-relay devices [--host H]

The devices host: device API, management API, and the dispatcher to the mentor (MENTOR_API_URL) and to
webhook subscribers. Applies its migrations at start-up.

  --host H   listen address ($HOST, else 0.0.0.0)

Environment: PORT (30080), DATA_DIR, DATABASE_URL, MENTOR_API_URL, MENTOR_SIGNING_SECRET, FORWARD_*,
RELAY_ADMIN_TOKEN, RELAY_ENCRYPTION_KEY, WEBHOOK_*, LOG_LEVEL; see docs/configuration.md.`,
  mentor: `Usage: raqeem-relay mentor [--host H]

The mentor host: ingest, read API, command creation, and the dispatcher of commands to DEVICES_API_URL.
Applies its migrations at start-up.

  --host H   listen address ($HOST, else 0.0.0.0)

Environment: PORT (30081), DATA_DIR, DATABASE_URL, DEVICES_API_URL, MENTOR_SIGNING_SECRET,
MENTOR_READ_TOKEN, RELAY_ADMIN_TOKEN, FORWARD_*, LOG_LEVEL; see docs/configuration.md.`,
  worker: `Usage: raqeem-relay worker

Only a dispatcher for the devices outbox at DATABASE_URL (scale-out on PostgreSQL): delivers to the mentor
(when MENTOR_API_URL is set) and to webhook subscribers. No flags; the devices host's environment.`,
  demo: `Usage: raqeem-relay demo [--devices-port P] [--mentor-port P] [--host H]

Both hosts in one process on SQLite under DATA_DIR (./data), wired together and signed (npm start).

  --devices-port P   devices host port, 0 to 65535 (30080; 0 picks a free port)
  --mentor-port P    mentor host port, 0 to 65535 (30081; 0 picks a free port)
  --host H           listen address of both hosts (127.0.0.1)`,
  simulate: `Usage: raqeem-relay simulate [--devices N] [--rate R] [--duration S] [--url U]

N fake devices sending R requests/s in all to a devices host.

  --devices N    fleet size, >= 1 (10)
  --rate R       requests per second in all, >= 0.1 (50)
  --duration S   seconds, >= 0.1 (10)
  --url U        devices host base URL ($DEVICES_API_URL, else http://127.0.0.1:30080)`,
  reconcile: `Usage: raqeem-relay reconcile --since ISO [--types a,b]

Re-publish records stored since --since to the mentor (safe: the mentor de-duplicates). It only enqueues:
the running devices host (or a worker) on the same database delivers.

  --since ISO    ISO-8601 time, required (e.g. 2025-01-01T00:00:00Z)
  --types a,b    exact event types (all by default): ${RECONCILE_TYPES.join(', ')}

Environment: the devices host's (DATA_DIR/DATABASE_URL, MENTOR_API_URL required, FORWARD_*).`,
  migrate: `Usage: raqeem-relay migrate [devices|mentor]

Apply the migrations (outbox tables and the host's own) and exit: both hosts' databases by default, or one.
Each host needs its own DATABASE_URL; a database that already holds the other host's tables is refused
before anything is changed.`,
  secret: `Usage: raqeem-relay secret [--bytes N]

Print a new Standard Webhooks signing secret: whsec_ followed by base64 of N random bytes (24 to 64; 32).
Give the same value to both hosts as MENTOR_SIGNING_SECRET.

  --bytes N   key length in bytes, 24 to 64 (32)`,
  'rotate-key': `Usage: raqeem-relay rotate-key

Re-encrypt every webhook signing secret and endpoint header set with the first (newest) key in
RELAY_ENCRYPTION_KEYS; values sealed with an older key in the list, or stored in plaintext, are rewritten.
Safe while hosts run (each endpoint is updated with a compare-and-set). No flags.

Environment: DATA_DIR/DATABASE_URL (the devices host's), RELAY_ENCRYPTION_KEYS (new key first, then the old ones).`,
};
