import { Counter, Histogram, type Registry } from 'prom-client';

export interface BusMetrics {
  requests: Counter<'subject' | 'outcome' | 'role'>;
  duration: Histogram<'subject' | 'role'>;
}

const cache = new WeakMap<Registry, BusMetrics>();

/** One set of bus metrics per registry, shared by the client and server sides. */
export function busMetrics(registry: Registry): BusMetrics {
  let metrics = cache.get(registry);
  if (!metrics) {
    metrics = {
      requests: new Counter({
        name: 'runnerhub_bus_requests_total',
        help: 'Bus requests by subject, outcome (ok or an error code) and role (client or server)',
        labelNames: ['subject', 'outcome', 'role'],
        registers: [registry],
      }),
      duration: new Histogram({
        name: 'runnerhub_bus_request_duration_seconds',
        help: 'Bus request latency by subject and role',
        labelNames: ['subject', 'role'],
        buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        registers: [registry],
      }),
    };
    cache.set(registry, metrics);
  }
  return metrics;
}
