/**
 * CPU time of processes, from /proc/<pid>/stat (utime + stime, in clock ticks of 10 ms on Linux), so the
 * ingest scenarios can report CPU per 1,000 records with forwarding on and off: the devices host, the
 * PostgreSQL backends serving its database, and each receiver. Background PostgreSQL processes (WAL
 * writer, checkpointer, autovacuum) are shared by every database and not counted.
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';

const TICK_MS = 10; // sysconf(_SC_CLK_TCK) is 100 on Linux.

/** CPU milliseconds a process has used so far, or null when it is gone (or /proc is not there). */
export function processCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: count fields after its last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(rest[11]) + Number(rest[12])) * TICK_MS; // fields 14 and 15
  } catch {
    return null;
  }
}

/** A per-process CPU snapshot: pid to milliseconds. */
export type CpuSnapshot = Map<number, number>;

/** CPU spent between two snapshots; a pid that appeared in between counts from zero. */
export function cpuSpent(before: CpuSnapshot, after: CpuSnapshot): number {
  let ms = 0;
  for (const [pid, t] of after) ms += t - (before.get(pid) ?? 0);
  return ms;
}

/** Something whose processes can be snapshotted (one process, or the backends of a database). */
export interface CpuSource {
  snapshot(): Promise<CpuSnapshot>;
}

export function pidSource(pid: number): CpuSource {
  return {
    snapshot: async () => {
      const t = processCpuMs(pid);
      return new Map(t === null ? [] : [[pid, t]]);
    },
  };
}

/**
 * The PostgreSQL backends connected to the database of `url` (the host's pool), read from
 * pg_stat_activity by a connection of our own, which is left out. None for SQLite.
 */
export function pgBackends(url: string): CpuSource & { close(): Promise<void> } {
  if (!url.startsWith('postgres')) return { snapshot: async () => new Map(), close: async () => undefined };
  const client = new pg.Client({ connectionString: url });
  const connected = client.connect();
  return {
    async snapshot() {
      await connected;
      const r = await client.query<{ pid: number }>(
        'SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()',
      );
      const out: CpuSnapshot = new Map();
      for (const { pid } of r.rows) {
        const t = processCpuMs(pid);
        if (t !== null) out.set(pid, t);
      }
      return out;
    },
    close: async () => {
      await connected.catch(() => undefined);
      await client.end().catch(() => undefined);
    },
  };
}

/** Snapshot several named sources together; `stop()` gives the CPU milliseconds each spent since. */
export async function cpuWindow(sources: Record<string, CpuSource>): Promise<{ stop(): Promise<Record<string, number>> }> {
  const names = Object.keys(sources);
  const before = await Promise.all(names.map((n) => sources[n]!.snapshot()));
  return {
    async stop() {
      const after = await Promise.all(names.map((n) => sources[n]!.snapshot()));
      return Object.fromEntries(names.map((n, i) => [n, cpuSpent(before[i]!, after[i]!)]));
    },
  };
}
