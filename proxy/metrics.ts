/**
 * Prometheus metrics of one proxy instance. Each app gets its own registry so tests can run
 * several proxies in one process. Hot-path counters are bound to their labels once.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { BreakerState } from './cache/breaker.ts';

const BREAKER_VALUE: Record<BreakerState, number> = { closed: 0, 'half-open': 1, open: 2 };

/** A plain number the hot path increments; the Prometheus counter reads it at scrape time. */
export interface Cell {
  value: number;
  inc(): void;
}

function cell(): Cell {
  return {
    value: 0,
    inc() {
      this.value += 1;
    },
  };
}

/** A counter whose per-label values live in cells (cheap to bump on every request). */
function cellCounter(
  registry: Registry,
  name: string,
  help: string,
  label: string,
  cells: Record<string, Cell>,
) {
  return new Counter({
    name,
    help,
    labelNames: [label],
    registers: [registry],
    collect() {
      this.reset();
      for (const [value, c] of Object.entries(cells)) this.labels(value).inc(c.value);
    },
  });
}

export function createProxyMetrics(region: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ region });
  collectDefaultMetrics({ register: registry });

  const hit = { L1: cell(), L2: cell() };
  const miss = { L1: cell(), L2: cell() };
  cellCounter(
    registry,
    'tiercache_cache_hits_total',
    'Requests answered from a cache tier',
    'tier',
    { l1: hit.L1, l2: hit.L2 },
  );
  cellCounter(
    registry,
    'tiercache_cache_misses_total',
    'Lookups that missed a cache tier',
    'tier',
    { l1: miss.L1, l2: miss.L2 },
  );
  const upstreamSeconds = new Histogram({
    name: 'tiercache_upstream_request_duration_seconds',
    help: 'Upstream request latency',
    labelNames: ['upstream', 'status'],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const coalesced = new Counter({
    name: 'tiercache_coalesced_waits_total',
    help: 'Requests that waited for another fetch of the same key instead of calling upstream',
    labelNames: ['scope'],
    registers: [registry],
  });
  const stale = new Counter({
    name: 'tiercache_stale_served_total',
    help: 'Stale entries served',
    labelNames: ['reason'],
    registers: [registry],
  });
  const l2Errors = new Counter({
    name: 'tiercache_l2_errors_total',
    help: 'Failed or timed-out Redis calls',
    labelNames: ['target', 'op'],
    registers: [registry],
  });
  const breaker = new Gauge({
    name: 'tiercache_l2_breaker_state',
    help: 'L2 circuit breaker: 0 closed, 1 half-open, 2 open',
    labelNames: ['target'],
    registers: [registry],
  });
  const l1Bytes = new Gauge({
    name: 'tiercache_l1_bytes',
    help: 'Bytes held in L1',
    labelNames: ['pool'],
    registers: [registry],
  });
  const upstreamBackoff = new Counter({
    name: 'tiercache_upstream_backoff_total',
    help: 'Requests not sent upstream because of a 429 back-off',
    labelNames: ['upstream'],
    registers: [registry],
  });

  return {
    registry,
    hit,
    miss,
    upstreamSeconds,
    coalesced: { process: coalesced.labels('process'), cluster: coalesced.labels('cluster') },
    stale: {
      revalidate: stale.labels('stale-while-revalidate'),
      error: stale.labels('stale-if-error'),
    },
    l2Error: (target: string, op: string) => l2Errors.labels(target, op).inc(),
    breaker: (target: string, state: BreakerState) =>
      breaker.labels(target).set(BREAKER_VALUE[state]),
    l1Bytes,
    upstreamBackoff,
  };
}

export type ProxyMetrics = ReturnType<typeof createProxyMetrics>;
