/**
 * Prometheus metrics of the relay. The host owns the registry (and `/metrics`); the relay registers its
 * instruments there. Queue depth and dead letters are read from the outbox at scrape time.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { Registry } from 'prom-client';

/** The relay's Prometheus metrics (registered on the relay's registry). */
export interface RelayMetrics {
  registry: Registry;
  success: Counter<'data_type' | 'target'>;
  failure: Counter<'data_type' | 'target'>;
  dead: Counter<'data_type' | 'target'>;
  duration: Histogram<'target' | 'outcome'>;
  circuit: Gauge<'key'>;
  operational: Counter<'type'>;
}

/**
 * @param targets The relay's target names: the queue and dead-letter gauges export a zero for each of them
 * (and each status) while there is nothing to count, so a dashboard shows 0, not "no data".
 */
export function createRelayMetrics(
  registry: Registry,
  counts: () => Promise<{ byStatus: Array<{ target: string; status: string; n: number }> }>,
  targets: readonly string[] = [],
): RelayMetrics {
  const success = new Counter({
    name: 'forward_success_total',
    help: 'Deliveries that reached their target.',
    labelNames: ['data_type', 'target'] as const,
    registers: [registry],
  });
  const failure = new Counter({
    name: 'forward_failure_total',
    help: 'Failed delivery attempts (each retry counts).',
    labelNames: ['data_type', 'target'] as const,
    registers: [registry],
  });
  const dead = new Counter({
    name: 'forward_dead_total',
    help: 'Deliveries moved to the dead-letter queue.',
    labelNames: ['data_type', 'target'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'forward_request_duration_seconds',
    help: 'Duration of outbound delivery requests.',
    labelNames: ['target', 'outcome'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const circuit = new Gauge({
    name: 'forward_circuit_state',
    help: 'Circuit state per target key: 0 closed, 1 half-open, 2 open.',
    labelNames: ['key'] as const,
    registers: [registry],
  });
  const operational = new Counter({
    name: 'relay_operational_events_total',
    help: 'Operational events raised (endpoint.disabled, endpoint.failing, endpoint.recovered, delivery.dead).',
    labelNames: ['type'] as const,
    registers: [registry],
  });
  const queue = new Gauge({
    name: 'forward_queue_depth',
    help: 'Deliveries waiting or in flight, per target.',
    labelNames: ['target', 'status'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const target of targets) for (const status of ['pending', 'inflight']) this.set({ target, status }, 0);
      const { byStatus } = await counts();
      for (const r of byStatus)
        if (r.status === 'pending' || r.status === 'inflight') this.set({ target: r.target, status: r.status }, r.n);
    },
  });
  const deadGauge = new Gauge({
    name: 'forward_dead_letters',
    help: 'Deliveries in the dead-letter queue, per target.',
    labelNames: ['target'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      for (const target of targets) this.set({ target }, 0);
      const { byStatus } = await counts();
      for (const r of byStatus) if (r.status === 'dead') this.set({ target: r.target }, r.n);
    },
  });
  void queue;
  void deadGauge;
  return { registry, success, failure, dead, duration, circuit, operational };
}
