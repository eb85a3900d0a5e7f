/**
 * One claim: how many rows to ask for and from which keys (local room, each key's cap, open circuits), the
 * claim statement itself (`sql/claimDeliveries.ts`), and the claimed rows turned into queue entries. It
 * also says whether due rows may have been left behind, which decides when the loop claims again and
 * whether a publish may skip the claim (`direct.ts`).
 */
import type { CircuitBreakers } from '../circuit.js';
import type { Database } from '../db.js';
import type { RelayEvent } from '../events.js';
import type { ResolvedDispatcherOptions } from '../options.js';
import { claimDeliveries } from '../sql/claimDeliveries.js';
import type { ClaimOptions } from '../sql/claimDeliveries.js';
import type { TargetPlugin } from '../target.js';
import type { Claimed, KeyQueues } from './keyQueues.js';

export interface ClaimDeps {
  db: Database;
  plugins: Map<string, TargetPlugin>;
  queues: KeyQueues;
  circuits: CircuitBreakers;
  options: ResolvedDispatcherOptions;
}

export interface ClaimResult {
  /** Rows claimed, lost ones included. */
  count: number;
  /** Claimed rows ready to queue. */
  claimed: Claimed[];
  /** Rows whose event is gone (pruned) or whose plugin is not registered. */
  lost: number[];
  /** The circuit keys of every claimed row. */
  keys: Set<string>;
  /** Set unless unchanged: the claim may have left due rows behind (it was full, or capacity stopped it). */
  backlogged?: boolean;
  /** Set unless unchanged: keys the claim left out or filled to their room. */
  backloggedKeys?: Set<string>;
}

const nothing = (): ClaimResult => ({ count: 0, claimed: [], lost: [], keys: new Set() });

/** Claim due rows for every key with room, or (`onlyKey`, a circuit probe) one row of one key. */
export async function claimDue(deps: ClaimDeps, onlyKey?: string): Promise<ClaimResult> {
  const { db, plugins, queues, circuits, options } = deps;
  // A relay with no targets (say, a mentor without DEVICES_API_URL) has nothing it could claim.
  if (plugins.size === 0) return nothing();
  const room = 2 * options.batchSize - queues.localRows();
  if (room <= 0 && onlyKey === undefined) return { ...nothing(), backlogged: true };
  const exclude = onlyKey === undefined ? circuits.blockedKeys() : [];
  // A key never holds more than its cap (concurrency x batch size) here, queued and in flight together.
  let heldKeyRoom: Record<string, number> = {};
  if (onlyKey === undefined) {
    const held = queues.claimRoom();
    exclude.push(...held.full);
    heldKeyRoom = held.room;
  }
  const perKeyCap: Record<string, number> = {};
  for (const p of plugins.values()) perKeyCap[p.name] = onlyKey === undefined ? queues.cap(p) : 1;
  const claimOptions: ClaimOptions = {
    dialect: db.dialect,
    owner: options.workerId,
    now: Date.now(),
    leaseMs: options.leaseMs,
    limit: onlyKey === undefined ? Math.min(options.batchSize, room) : 1,
    perKeyCap,
    defaultPerKeyCap: 1,
    heldKeyRoom,
    excludeKeys: exclude,
    targets: [...plugins.keys()],
    onlyKey,
  };
  // On SQLite a lone UPDATE that meets a flush transaction waits in SQLite's busy handler, which sleeps 1,
  // 2, 5, 10 ms...: 12 ms per claim measured while draining a backlog. Queued in our writer queue it costs 1 ms.
  const rows =
    db.dialect === 'sqlite'
      ? await db.transaction((t) => claimDeliveries(db.sequelize, claimOptions, t))
      : await claimDeliveries(db.sequelize, claimOptions);
  const result: ClaimResult = { count: rows.length, claimed: [], lost: [], keys: new Set(rows.map((r) => r.circuit_key)) };
  if (onlyKey === undefined) {
    result.backlogged = rows.length >= claimOptions.limit;
    const got = new Map<string, { n: number; target: string }>();
    for (const r of rows) got.set(r.circuit_key, { n: (got.get(r.circuit_key)?.n ?? 0) + 1, target: r.target });
    result.backloggedKeys = new Set(exclude);
    for (const [key, { n, target }] of got) if (n >= (heldKeyRoom[key] ?? perKeyCap[target] ?? 1)) result.backloggedKeys.add(key);
  }
  // Rows of one event (its mentor and webhook deliveries) share one parsed copy.
  const events = new Map<string, RelayEvent>();
  for (const { event_timestamp: timestamp, event_data: data, event_request_id: requestId, ...row } of rows) {
    if (data === null || timestamp === null || !plugins.has(row.target)) {
      result.lost.push(row.id);
      continue;
    }
    let event = events.get(row.event_id);
    if (!event) {
      event = { id: row.event_id, type: row.event_type, deviceid: row.deviceid, timestamp, data: JSON.parse(data), requestId };
      events.set(row.event_id, event);
    }
    result.claimed.push({ ...row, event, leaseUntil: claimOptions.now + claimOptions.leaseMs });
  }
  return result;
}
