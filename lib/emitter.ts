/**
 * Typed, namespaced relay events, emitted safely: a listener that throws is reported on `error:listener`
 * and never stops the dispatcher.
 */
import { EventEmitter } from 'node:events';
import type { CircuitTransition } from './circuit.js';
import type { RelayEvent } from './events.js';
import type { BatchInfo } from './groupCommit.js';

/** What a delivery event tells: the deliveries and events one request carried, and how it went. */
export interface DeliveryEventInfo {
  deliveryIds: number[];
  eventIds: string[];
  eventType: string;
  target: string;
  endpointId: string | null;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  /** Attempts each delivery has made, this one included (same order as `deliveryIds`). */
  attempts?: number[];
}

/** Every event `relay.events` emits, with its arguments. */
export interface RelayEventMap {
  'delivery:succeeded': [DeliveryEventInfo];
  'delivery:failed': [DeliveryEventInfo & { willRetry: boolean }];
  'delivery:dead': [DeliveryEventInfo];
  'circuit:open': [CircuitTransition];
  'circuit:half-open': [CircuitTransition];
  'circuit:closed': [CircuitTransition];
  'dispatcher:error': [{ error: Error; during: string }];
  /** A group-commit batch (`relay.transaction`) committed. */
  'commit:batch': [BatchInfo];
  /** An operational event (`endpoint.disabled`, `delivery.dead`, ...) was raised; see plugins/webhooks/operational.ts. */
  operational: [RelayEvent];
  'error:listener': [{ error: unknown; event: string }];
}

/** `relay.events`: a typed `EventEmitter` over {@link RelayEventMap}. */
export class RelayEmitter extends EventEmitter<RelayEventMap> {
  /** Emit to every listener; a listener that throws (or rejects) is reported on `error:listener`, never to the emitter. */
  safeEmit<K extends keyof RelayEventMap>(event: K, ...args: RelayEventMap[K]): void {
    for (const listener of this.listeners(event) as Array<(...a: RelayEventMap[K]) => unknown>) {
      try {
        const r = listener(...args);
        if (r && typeof (r as Promise<unknown>).catch === 'function') {
          (r as Promise<unknown>).catch((error) => this.reportListenerError(event, error));
        }
      } catch (error) {
        this.reportListenerError(event, error);
      }
    }
  }

  private reportListenerError(event: string, error: unknown): void {
    if (event === 'error:listener') return;
    try {
      this.emit('error:listener', { error, event });
    } catch {
      // a throwing error listener is ignored: nothing is left to tell
    }
  }
}
