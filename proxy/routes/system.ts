/**
 * System routes (seed 000): /status, /stats, /config (secrets redacted, admin token), /health,
 * /ready and the Prometheus /metrics.
 */
import type { FastifyInstance } from 'fastify';
import type { TieredCache } from '../cache/tiered.ts';
import type { ProxyConfig } from '../config.ts';
import type { ProxyMetrics } from '../metrics.ts';
import type { StatsReader } from '../stats.ts';
import { adminGuard } from './admin-auth.ts';

export interface SystemOptions {
  config: ProxyConfig;
  cache: TieredCache;
  metrics: ProxyMetrics;
  stats: StatsReader;
  upstream: { name: string; demo: boolean };
  version: string;
}

export async function systemRoutes(app: FastifyInstance, opts: SystemOptions): Promise<void> {
  const { config, cache, metrics, stats, upstream, version } = opts;
  const startedAt = Date.now();

  const l2State = () => {
    if (!cache.l2) return 'disabled';
    const active = cache.l2.active();
    return active ? (active.name === 'main' ? 'ok' : 'fallback') : 'unavailable';
  };

  app.get('/health', async () => ({ status: 'ok' }));

  // Ready as soon as we serve: L2 trouble degrades the cache, it never makes the proxy unready.
  app.get('/ready', async () => ({ status: 'ready', l2: l2State() }));

  app.get('/status', async () => ({
    status: 'ok',
    service: 'tiercache-proxy',
    version,
    region: config.region,
    upstream: upstream.name,
    demo_data: upstream.demo,
    uptime_seconds: Math.floor((Date.now() - startedAt) / 1000),
    l2: l2State(),
    l2_breaker: cache.l2
      ? Object.fromEntries(cache.l2.targets.map((t) => [t.name, t.breaker.state]))
      : {},
    // In a cluster, each master's own breaker (a sick shard closes L2 for its slots only).
    l2_node_breakers: cache.l2
      ? Object.fromEntries(cache.l2.targets.map((t) => [t.name, t.nodeBreakerStates()]))
      : {},
    // REDIS_READ_FROM=nearest: what each node's PING takes, which decides where reads go.
    l2_node_latency_ms: cache.l2
      ? Object.fromEntries(
          cache.l2.targets.flatMap((t) => {
            const ms = t.nodeLatencies();
            return ms ? [[t.name, ms]] : [];
          }),
        )
      : {},
  }));

  app.get('/stats', async () => {
    const l1 = cache.l1.stats();
    return {
      region: config.region,
      ...(await stats.read()),
      l1_entries: l1.entries + l1.imageEntries,
      l1_bytes: l1.bytes + l1.imageBytes,
    };
  });

  app.get('/config', { preHandler: adminGuard(config.adminToken) }, async () => ({
    region: config.region,
    upstream: upstream.name,
    demo_data: upstream.demo,
    env: config.redacted,
  }));

  app.get('/metrics', async (_req, reply) => {
    const l1 = cache.l1.stats();
    metrics.l1Bytes.labels('default').set(l1.bytes);
    metrics.l1Bytes.labels('image').set(l1.imageBytes);
    return reply.type(metrics.registry.contentType).send(await metrics.exposition());
  });
}
