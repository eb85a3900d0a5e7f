/**
 * The direct path: deliveries this process's dispatcher can take at once are written already leased to it
 * and sent from memory after commit: no claim statement, no event read, no wake-up. If the process dies
 * first, the lease runs out and any dispatcher re-sends them, as after any crash.
 *
 * `Relay.publish` asks `lease` which of its rows to write leased, and after the insert hands the result to
 * `handOver`, which queues them once the caller's write is committed.
 * @internal
 */
import type { RelayEvent } from '../events.js';
import { deliveryKey } from '../sql/insertOutbox.js';
import type { NewDelivery, OutboxWritten } from '../sql/insertOutbox.js';
import type { TargetPlugin } from '../target.js';
import type { Claimed } from './keyQueues.js';

/** What the direct path needs of its dispatcher. */
export interface DirectHost {
  owner: string;
  leaseMs: number;
  /**
   * May a delivery for `key` skip the claim? `adding` counts rows of the same publish already taken.
   * Only while the dispatcher runs, is caught up on that key, its circuit is closed and it has room.
   */
  accepts(key: string, plugin: TargetPlugin, adding: number): boolean;
  /** Queue rows written leased by a publish that has committed, as if claimed. */
  enqueue(rows: Claimed[]): void;
  /** Rows of these keys were written pending: they wait for a claim (now, or when the key drains). */
  wake(keys: Set<string>): void;
}

/** @internal */
export class DirectPath {
  constructor(
    private readonly host: DirectHost,
    private readonly plugins: Map<string, TargetPlugin>,
  ) {}

  /** Set `lease` on each row of a publish that this dispatcher takes without a claim. */
  lease(rows: NewDelivery[], now: number): void {
    const { owner, leaseMs } = this.host;
    const taken = new Map<string, number>();
    for (const d of rows) {
      const plugin = this.plugins.get(d.target);
      const adding = taken.get(d.circuitKey) ?? 0;
      if (!plugin || !this.host.accepts(d.circuitKey, plugin, adding)) continue;
      d.lease = { owner, until: now + leaseMs };
      taken.set(d.circuitKey, adding + 1);
    }
  }

  /**
   * The publish's rows are written: what to do once they are committed (queue those written leased, wake
   * the dispatcher for the rest). The caller runs it after its commit (`transaction.afterCommit`), or at
   * once when the write was one autocommitted statement.
   */
  handOver(rows: NewDelivery[], written: OutboxWritten): () => void {
    const queued: Claimed[] = [];
    const pending = new Set<string>();
    // The stored copy, not the caller's object, which it may change after publishing; one per event.
    const copies = new Map<string, RelayEvent>();
    for (const d of rows) {
      const id = d.lease && written.leased.get(deliveryKey(d.event.id, d.circuitKey));
      if (!d.lease || id === undefined) {
        pending.add(d.circuitKey);
        continue;
      }
      const e = d.event;
      let event = copies.get(e.id);
      if (!event) {
        event = { ...e, data: JSON.parse(written.stored.get(e.id)!) as RelayEvent['data'], requestId: e.requestId ?? null };
        copies.set(e.id, event);
      }
      queued.push({
        id,
        event_id: e.id,
        event_type: e.type,
        deviceid: e.deviceid,
        target: d.target,
        endpoint_id: d.endpointId,
        circuit_key: d.circuitKey,
        attempts: 0,
        max_attempts: d.maxAttempts,
        next_attempt_at: d.nextAttemptAt,
        event,
        leaseUntil: d.lease.until,
      });
    }
    return () => {
      if (queued.length > 0) this.host.enqueue(queued);
      if (pending.size > 0) this.host.wake(pending);
    };
  }
}
