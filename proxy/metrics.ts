/**
 * Prometheus metrics of one proxy instance. Each app gets its own registry so tests can run
 * several proxies in one process. Hot-path counters are bound to their labels once.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { BreakerState } from './cache/breaker.ts';
import { AnswerLatency } from './latency.ts';

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

/** Hits and misses of one cache category, per tier. */
export interface CategoryCells {
  hit: { L1: Cell; L2: Cell };
  miss: { L1: Cell; L2: Cell };
}

/**
 * The category a cache class is counted under: the class itself, except that the open and
 * closed chunks of charts (`charts-open`, `charts-closed`) are both `charts`.
 */
export function categoryOf(cls: string): string {
  const dash = cls.indexOf('-');
  return dash < 0 ? cls : cls.slice(0, dash);
}

/** Hits and misses per tier and category, as plain numbers read by Prometheus at scrape time. */
export class LookupCounts {
  readonly #byCategory = new Map<string, CategoryCells>();
  readonly #byClass = new Map<string, CategoryCells>();

  /** The cells a lookup of class `cls` bumps (one map lookup on the hot path). */
  of(cls: string): CategoryCells {
    let cells = this.#byClass.get(cls);
    if (!cells) {
      const category = categoryOf(cls);
      cells = this.#byCategory.get(category);
      if (!cells) {
        cells = { hit: { L1: cell(), L2: cell() }, miss: { L1: cell(), L2: cell() } };
        this.#byCategory.set(category, cells);
      }
      this.#byClass.set(cls, cells);
    }
    return cells;
  }

  categories(): IterableIterator<[string, CategoryCells]> {
    return this.#byCategory.entries();
  }
}

function lookupCounter(
  registry: Registry,
  name: string,
  help: string,
  counts: LookupCounts,
  kind: 'hit' | 'miss',
) {
  return new Counter({
    name,
    help,
    labelNames: ['tier', 'category'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [category, cells] of counts.categories()) {
        this.labels('l1', category).inc(cells[kind].L1.value);
        this.labels('l2', category).inc(cells[kind].L2.value);
      }
    },
  });
}

export function createProxyMetrics(region: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ region });
  collectDefaultMetrics({ register: registry });

  const lookups = new LookupCounts();
  lookupCounter(
    registry,
    'tiercache_cache_hits_total',
    'Requests answered from a cache tier, per cache category',
    lookups,
    'hit',
  );
  lookupCounter(
    registry,
    'tiercache_cache_misses_total',
    'Lookups that missed a cache tier, per cache category',
    lookups,
    'miss',
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
  const l2SlowReads = new Counter({
    name: 'tiercache_l2_slow_reads_total',
    help: 'Hot-path L2 reads a request stopped waiting for at the soft deadline (L2_SOFT_TIMEOUT_MS)',
    labelNames: ['target'],
    registers: [registry],
  });
  const nodeBreaker = new Gauge({
    name: 'tiercache_l2_node_breaker_state',
    help: "A Redis Cluster master's own circuit breaker: 0 closed, 1 half-open, 2 open",
    labelNames: ['target', 'node'],
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
  const upstreamShed = new Counter({
    name: 'tiercache_upstream_refresh_shed_total',
    help: 'Background refreshes not sent upstream (a back-off, or the origin busy): shed before client requests',
    labelNames: ['upstream'],
    registers: [registry],
  });
  const upstreamBackoff = new Counter({
    name: 'tiercache_upstream_backoff_total',
    help: 'Requests not sent upstream because of a 429 back-off',
    labelNames: ['upstream'],
    registers: [registry],
  });
  const shieldRequests = new Counter({
    name: 'tiercache_shield_requests_total',
    help: 'Misses asked of the shield tier (SHIELD_URL), by what became of them: hit (the shield had it), miss (it asked the upstream), fallback (it could not answer; the upstream was asked here)',
    labelNames: ['result'],
    registers: [registry],
  });

  const answerLatency = new AnswerLatency();

  return {
    registry,
    answerLatency,
    /** Everything /metrics shows: prom-client's registry, then the answer latency histogram. */
    exposition: async () => `${await registry.metrics()}\n${answerLatency.exposition({ region })}`,
    lookups,
    upstreamSeconds,
    coalesced: { process: coalesced.labels('process'), cluster: coalesced.labels('cluster') },
    stale: {
      revalidate: stale.labels('stale-while-revalidate'),
      error: stale.labels('stale-if-error'),
    },
    l2Error: (target: string, op: string) => l2Errors.labels(target, op).inc(),
    l2SlowRead: (target: string) => l2SlowReads.labels(target).inc(),
    breaker: (target: string, state: BreakerState) =>
      breaker.labels(target).set(BREAKER_VALUE[state]),
    nodeBreaker: (target: string, node: string, state: BreakerState) =>
      nodeBreaker.labels(target, node).set(BREAKER_VALUE[state]),
    l1Bytes,
    upstreamBackoff,
    upstreamShed,
    shieldRequests,
  };
}

export type ProxyMetrics = ReturnType<typeof createProxyMetrics>;
