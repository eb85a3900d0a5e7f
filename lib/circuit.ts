/**
 * A circuit breaker per key (a target, or one webhook endpoint). Closed: requests flow and consecutive
 * failures are counted. Open: the key is left out of claims, so its deliveries wait without spending
 * attempts. When the cool-down ends the key is half-open: one probe goes out; success closes the circuit and
 * the backlog drains, failure re-opens it with a doubled cool-down (capped).
 */
export interface CircuitOptions {
  /** Consecutive connection failures or 5xx that open the circuit. */
  failureThreshold: number;
  cooldownMs: number;
  maxCooldownMs: number;
}

/** State of one circuit key: requests flow (`closed`), wait (`open`), or one probe is out (`half-open`). */
export type CircuitState = 'closed' | 'open' | 'half-open';

interface Entry {
  state: CircuitState;
  failures: number;
  openUntil: number;
  cooldownMs: number;
  probing: boolean;
  openedAt: number;
}

/** A circuit changing state, emitted as `circuit:open`, `circuit:half-open` and `circuit:closed`. */
export interface CircuitTransition {
  key: string;
  from: CircuitState;
  to: CircuitState;
  openedAt: number;
}

/** The circuits of every key in one dispatcher; transitions are reported to `onTransition`. */
export class CircuitBreakers {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly optionsFor: (key: string) => CircuitOptions,
    private readonly onTransition: (t: CircuitTransition) => void = () => {},
  ) {}

  /** The key's state now; an open circuit whose cool-down is over becomes half-open. */
  state(key: string, now = Date.now()): CircuitState {
    const e = this.entries.get(key);
    if (!e) return 'closed';
    if (e.state === 'open' && now >= e.openUntil) this.move(key, e, 'half-open');
    return e.state;
  }

  /** Keys that must not be claimed in bulk now: open, or half-open (they get a single probe instead). */
  blockedKeys(now = Date.now()): string[] {
    const keys: string[] = [];
    for (const key of this.entries.keys()) if (this.state(key, now) !== 'closed') keys.push(key);
    return keys;
  }

  /** Half-open keys with no probe in flight; marks them as probing. */
  takeProbes(now = Date.now()): string[] {
    const keys: string[] = [];
    for (const [key, e] of this.entries) {
      if (this.state(key, now) === 'half-open' && !e.probing) {
        e.probing = true;
        keys.push(key);
      }
    }
    return keys;
  }

  /**
   * A probe found nothing to send. The key stays half-open (nothing proved the target is back); the next
   * delivery that comes due becomes the probe.
   */
  probeSkipped(key: string): void {
    const e = this.entries.get(key);
    if (e) e.probing = false;
  }

  /** Earliest time a blocked key becomes probe-able, for the dispatcher's timer. */
  nextChangeAt(): number | null {
    let next: number | null = null;
    for (const e of this.entries.values()) if (e.state === 'open' && (next === null || e.openUntil < next)) next = e.openUntil;
    return next;
  }

  /** A request of this key succeeded: close its circuit and reset the failure count. */
  recordSuccess(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    if (e.state !== 'closed') this.move(key, e, 'closed');
    this.entries.delete(key);
  }

  /** A request of this key failed (connection error or 5xx): count it, and open or re-open the circuit. */
  recordFailure(key: string, now = Date.now()): void {
    const o = this.optionsFor(key);
    let e = this.entries.get(key);
    if (!e) {
      e = { state: 'closed', failures: 0, openUntil: 0, cooldownMs: o.cooldownMs, probing: false, openedAt: 0 };
      this.entries.set(key, e);
    }
    e.failures += 1;
    if (e.state === 'half-open') {
      e.cooldownMs = Math.min(e.cooldownMs * 2, o.maxCooldownMs);
      e.probing = false;
      e.openUntil = now + e.cooldownMs;
      this.move(key, e, 'open');
    } else if (e.state === 'closed' && e.failures >= o.failureThreshold) {
      e.cooldownMs = o.cooldownMs;
      e.openUntil = now + e.cooldownMs;
      e.openedAt = now;
      this.move(key, e, 'open');
    }
  }

  /** Every key not closed, for metrics and the health of a target. */
  snapshot(): Array<{ key: string; state: CircuitState; failures: number }> {
    return [...this.entries].map(([key, e]) => ({ key, state: this.state(key), failures: e.failures }));
  }

  private move(key: string, e: Entry, to: CircuitState): void {
    const from = e.state;
    e.state = to;
    if (from !== to) this.onTransition({ key, from, to, openedAt: e.openedAt });
  }
}
