/**
 * Request statistics read from the same numbers Prometheus scrapes, so /stats, /cache/info,
 * /api/cache/stats and the dashboard always agree with /metrics.
 */
import type { Counter, Histogram, Metric } from 'prom-client';
import type { CategoryCells, ProxyMetrics } from './metrics.ts';

async function byLabel(metric: Metric | undefined, label: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (!metric) return out;
  for (const v of (await (metric as Counter).get()).values) out[String(v.labels[label])] = v.value;
  return out;
}

const rate = (hits: number, misses: number) =>
  hits + misses === 0 ? 0 : Math.round((hits / (hits + misses)) * 10_000) / 10_000;

/** Hits, misses and hit rates of one set of lookups (a category, or all of them). */
export interface LookupStats {
  l1_hits: number;
  l1_misses: number;
  l1_hit_rate: number;
  l2_hits: number;
  l2_misses: number;
  l2_hit_rate: number;
  /** Share of lookups answered by L1 or L2, i.e. without asking the upstream. */
  overall_hit_rate: number;
}

function lookupStats(cells: CategoryCells[]): LookupStats {
  let l1Hits = 0;
  let l1Misses = 0;
  let l2Hits = 0;
  let l2Misses = 0;
  for (const c of cells) {
    l1Hits += c.hit.L1.value;
    l1Misses += c.miss.L1.value;
    l2Hits += c.hit.L2.value;
    l2Misses += c.miss.L2.value;
  }
  const lookups = l1Hits + l1Misses;
  return {
    l1_hits: l1Hits,
    l1_misses: l1Misses,
    l1_hit_rate: rate(l1Hits, l1Misses),
    l2_hits: l2Hits,
    l2_misses: l2Misses,
    l2_hit_rate: rate(l2Hits, l2Misses),
    overall_hit_rate: rate(l1Hits + l2Hits, lookups - l1Hits - l2Hits),
  };
}

/** Calls, errors (status ≥ 500, 429, a timeout or no answer) and mean latency per upstream. */
export interface UpstreamStats {
  requests: number;
  errors: number;
  mean_latency_ms: number;
}

async function upstreamStats(metric: Metric | undefined): Promise<Record<string, UpstreamStats>> {
  const out: Record<string, UpstreamStats & { seconds: number }> = {};
  if (!metric) return {};
  for (const v of (await (metric as Histogram).get()).values) {
    const name = String(v.labels.upstream);
    out[name] ??= { requests: 0, errors: 0, mean_latency_ms: 0, seconds: 0 };
    const row = out[name];
    const status = String(v.labels.status);
    const failed = ['error', 'timeout', '429'].includes(status) || status.startsWith('5');
    if (v.metricName?.endsWith('_count')) {
      row.requests += v.value;
      if (failed) row.errors += v.value;
    } else if (v.metricName?.endsWith('_sum')) row.seconds += v.value;
  }
  return Object.fromEntries(
    Object.entries(out).map(([name, { seconds, ...row }]) => [
      name,
      {
        ...row,
        mean_latency_ms: row.requests === 0 ? 0 : Math.round((seconds / row.requests) * 1e4) / 10,
      },
    ]),
  );
}

export interface StatsReader {
  read(): Promise<LookupStats & Record<string, number>>;
  /** Hits and misses per cache category (json, image, search, prices, charts, …). */
  categories(): Record<string, LookupStats>;
  upstreams(): Promise<Record<string, UpstreamStats>>;
  /** The statistics of a category nothing was looked up in yet. */
  empty(): LookupStats;
}

export function statsReader(metrics: ProxyMetrics): StatsReader {
  const r = metrics.registry;
  return {
    async read() {
      const stale = await byLabel(r.getSingleMetric('tiercache_stale_served_total'), 'reason');
      const coalesced = await byLabel(
        r.getSingleMetric('tiercache_coalesced_waits_total'),
        'scope',
      );
      return {
        ...lookupStats([...metrics.lookups.categories()].map(([, cells]) => cells)),
        stale_while_revalidate: stale['stale-while-revalidate'] ?? 0,
        stale_if_error: stale['stale-if-error'] ?? 0,
        coalesced_in_process: coalesced.process ?? 0,
        coalesced_across_replicas: coalesced.cluster ?? 0,
      };
    },
    categories() {
      return Object.fromEntries(
        [...metrics.lookups.categories()].map(([name, cells]) => [name, lookupStats([cells])]),
      );
    },
    empty: () => lookupStats([]),
    upstreams: () =>
      upstreamStats(r.getSingleMetric('tiercache_upstream_request_duration_seconds')),
  };
}
