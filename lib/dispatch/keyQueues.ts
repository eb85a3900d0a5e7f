/**
 * Claimed rows waiting to be sent, one queue per circuit key (a target, or one webhook endpoint), with the
 * bookkeeping that bounds them: how many rows a key may hold, which queued rows' leases are too short to
 * send now, which rows go together in one request, and whether a partial batch should wait (`linger.ts`).
 * No timers and no I/O: the dispatcher acts on what these methods return.
 */
import type { RelayEvent } from '../events.js';
import type { ResolvedDispatcherOptions } from '../options.js';
import type { ClaimedRow } from '../sql/claimDeliveries.js';
import type { TargetPlugin } from '../target.js';
import { lingerDecision } from './linger.js';
import type { LingerDecision } from './linger.js';

export interface Claimed extends Omit<ClaimedRow, 'event_timestamp' | 'event_data' | 'event_request_id'> {
  event: RelayEvent;
  /** When this dispatcher's lease on the row runs out. */
  leaseUntil: number;
}

export interface KeyState {
  plugin: TargetPlugin;
  queue: Claimed[];
  inflightRequests: number;
  inflightRows: number;
  /** When a partial batch started waiting for a request slot to finish (`linger`). */
  lingerSince: number | null;
}

/** Slack between the end of a request's timeout and the end of its row's lease (clocks, the result write). */
const LEASE_MARGIN_MS = 2_000;

type QueueOptions = Pick<ResolvedDispatcherOptions, 'concurrency' | 'queueDepth' | 'requestTimeoutMs' | 'leaseMs' | 'claimIntervalMs'>;

export class KeyQueues {
  private readonly keys = new Map<string, KeyState>();
  /** When each batching key last sent a request (recent entries only; kept apart from the key's state,
   * which is dropped whenever its queue empties between two records). */
  private readonly lastSend = new Map<string, number>();

  constructor(private readonly options: QueueOptions) {}

  get(key: string): KeyState | undefined {
    return this.keys.get(key);
  }

  /** Queue rows (claimed or written leased by a publish); returns the keys they went to. */
  push(rows: Claimed[], pluginOf: (row: Claimed) => TargetPlugin): Set<string> {
    const touched = new Set<string>();
    for (const row of rows) {
      let k = this.keys.get(row.circuit_key);
      if (!k) {
        k = { plugin: pluginOf(row), queue: [], inflightRequests: 0, inflightRows: 0, lingerSince: null };
        this.keys.set(row.circuit_key, k);
      }
      k.queue.push(row);
      touched.add(row.circuit_key);
    }
    return touched;
  }

  /** Rows held here, queued and in flight, over every key. */
  localRows(): number {
    let n = 0;
    for (const k of this.keys.values()) n += k.queue.length + k.inflightRows;
    return n;
  }

  /** Rows one key holds, queued and in flight. */
  held(key: string): number {
    const k = this.keys.get(key);
    return k ? k.queue.length + k.inflightRows : 0;
  }

  /**
   * The key holds more than half its cap. A claim for it can wait until it has sent that much: refilled at
   * half, each claim takes half a cap of rows, where a claim per freed request slot took a few (a webhook
   * endpoint at 1,000 deliveries/s cost 80 claims a second, 12 rows each).
   */
  stocked(key: string): boolean {
    const k = this.keys.get(key);
    return k !== undefined && 2 * (k.queue.length + k.inflightRows) > this.cap(k.plugin);
  }

  /**
   * Rows one key may hold here, queued and in flight: its concurrency times a full batch or `queueDepth`,
   * whichever is larger. With a cap of one row per request slot, one webhook endpoint cost a claim
   * round trip per delivery and topped out near 390 deliveries/s; queued rows are sent only while their
   * lease covers the request (`dropStale`), so depth never risks a second dispatcher sending them too.
   */
  cap(plugin: TargetPlugin): number {
    return (plugin.concurrency ?? this.options.concurrency) * Math.max(plugin.batch?.maxSize ?? 1, this.options.queueDepth);
  }

  /** For a claim: the room each held key has left, and the keys that have none. */
  claimRoom(): { room: Record<string, number>; full: string[] } {
    const room: Record<string, number> = {};
    const full: string[] = [];
    for (const [key, k] of this.keys) {
      const left = this.cap(k.plugin) - k.queue.length - k.inflightRows;
      if (left <= 0) full.push(key);
      else room[key] = left;
    }
    return { room, full };
  }

  /** Empty every queue (rows claimed but never sent), for a stop. */
  takeAllQueued(): Claimed[] {
    return [...this.keys.values()].flatMap((k) => k.queue.splice(0));
  }

  /** Empty one key's queue (its circuit opened while they waited); forgets the key if nothing is in flight. */
  takeQueued(key: string): Claimed[] {
    const k = this.keys.get(key);
    if (!k) return [];
    const rows = k.queue.splice(0);
    if (k.inflightRequests === 0) this.keys.delete(key);
    return rows;
  }

  /** Forget a key once nothing is queued or in flight; true if it still has work. */
  settle(key: string): boolean {
    const k = this.keys.get(key);
    if (!k) return false;
    if (k.queue.length === 0 && k.inflightRequests === 0) {
      this.keys.delete(key);
      return false;
    }
    return true;
  }

  /**
   * Queued rows whose lease would run out before a request started now could finish (a slow key held them
   * too long) leave the queue, to be handed back unsent, so no other dispatcher can claim a row while we
   * may still send it. Returns their ids.
   */
  dropStale(k: KeyState, now: number): number[] {
    const { requestTimeoutMs, leaseMs } = this.options;
    const latest = now + requestTimeoutMs + Math.min(LEASE_MARGIN_MS, (leaseMs - requestTimeoutMs) / 2);
    let n = 0;
    while (n < k.queue.length && k.queue[n]!.leaseUntil < latest) n++;
    return n === 0 ? [] : k.queue.splice(0, n).map((r) => r.id);
  }

  /** Apply the linger rule to a key now, keeping its hold state. */
  linger(key: string, k: KeyState, now: number): LingerDecision {
    const sentAt = this.lastSend.get(key);
    if (sentAt !== undefined && now - sentAt >= this.options.claimIntervalMs) this.lastSend.delete(key);
    const d = lingerDecision({
      now,
      batch: k.plugin.batch,
      queued: k.queue.length,
      inflightRequests: k.inflightRequests,
      lastSentAt: sentAt,
      lingerSince: k.lingerSince,
      claimIntervalMs: this.options.claimIntervalMs,
    });
    k.lingerSince = d.send ? null : d.since;
    return d;
  }

  /**
   * Take the next request's rows off a key's queue: the head plus, for a batching plugin, every queued row
   * with the same batch key (up to a full batch). They count as in flight until `finish`.
   */
  takeGroup(key: string, k: KeyState, now: number): Claimed[] {
    const head = k.queue.shift()!;
    const batch = k.plugin.batch;
    const bkey = batch ? batch.key(head.event) : null;
    const group = [head];
    if (batch && bkey !== null) {
      for (let i = 0; i < k.queue.length && group.length < batch.maxSize; ) {
        const r = k.queue[i]!;
        if (batch.key(r.event) === bkey) {
          group.push(r);
          k.queue.splice(i, 1);
        } else i++;
      }
    }
    if (batch) this.lastSend.set(key, now);
    k.inflightRequests += 1;
    k.inflightRows += group.length;
    return group;
  }

  /** A request taken by `takeGroup` is done. */
  finish(k: KeyState, group: Claimed[]): void {
    k.inflightRequests -= 1;
    k.inflightRows -= group.length;
  }
}
