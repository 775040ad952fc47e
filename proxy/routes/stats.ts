/**
 * Request statistics read back from the Prometheus counters, so /stats, /cache/info and
 * /api/cache/stats always agree with /metrics.
 */
import type { Counter, Metric } from 'prom-client';
import type { ProxyMetrics } from '../metrics.ts';

async function byLabel(metric: Metric | undefined, label: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (!metric) return out;
  for (const v of (await (metric as Counter).get()).values) out[String(v.labels[label])] = v.value;
  return out;
}

const rate = (hits: number, misses: number) =>
  hits + misses === 0 ? 0 : Math.round((hits / (hits + misses)) * 10_000) / 10_000;

export interface StatsReader {
  read(): Promise<Record<string, number>>;
}

export function statsReader(metrics: ProxyMetrics): StatsReader {
  const r = metrics.registry;
  return {
    async read() {
      const hits = await byLabel(r.getSingleMetric('tiercache_cache_hits_total'), 'tier');
      const misses = await byLabel(r.getSingleMetric('tiercache_cache_misses_total'), 'tier');
      const stale = await byLabel(r.getSingleMetric('tiercache_stale_served_total'), 'reason');
      const coalesced = await byLabel(
        r.getSingleMetric('tiercache_coalesced_waits_total'),
        'scope',
      );
      const l1Hits = hits.l1 ?? 0;
      const l2Hits = hits.l2 ?? 0;
      const l1Misses = misses.l1 ?? 0;
      const l2Misses = misses.l2 ?? 0;
      const served = l1Hits + l1Misses;
      return {
        l1_hits: l1Hits,
        l1_misses: l1Misses,
        l1_hit_rate: rate(l1Hits, l1Misses),
        l2_hits: l2Hits,
        l2_misses: l2Misses,
        l2_hit_rate: rate(l2Hits, l2Misses),
        overall_hit_rate:
          served === 0 ? 0 : Math.round(((l1Hits + l2Hits) / served) * 10_000) / 10_000,
        stale_while_revalidate: stale['stale-while-revalidate'] ?? 0,
        stale_if_error: stale['stale-if-error'] ?? 0,
        coalesced_in_process: coalesced.process ?? 0,
        coalesced_across_replicas: coalesced.cluster ?? 0,
      };
    },
  };
}
