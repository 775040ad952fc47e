/**
 * What the proxy's L2 tests share: a demo upstream, a 3-master Redis Cluster and a standalone
 * Redis, started once per file. Proxies a test registers are closed after it, and every Redis
 * is flushed, so each test starts from empty tiers.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { type DemoUpstream, startDemoUpstream } from '../../proxy/upstreams/demo-server.ts';
import type { RunningProxy } from './proxy.ts';
import { type RedisNode, startCluster, startRedis, type TestCluster } from './redis.ts';

export interface L2Fixture {
  upstream: DemoUpstream;
  cluster: TestCluster;
  standalone: RedisNode;
  /** Closed after each test. */
  proxies: RunningProxy[];
}

export function useL2Fixture(apiKey: string): L2Fixture {
  const fx = { proxies: [] } as unknown as L2Fixture;
  beforeAll(async () => {
    [fx.upstream, fx.cluster, fx.standalone] = await Promise.all([
      startDemoUpstream({ apiKey }),
      startCluster(3),
      startRedis(),
    ]);
  });
  afterEach(async () => {
    await Promise.all(fx.proxies.splice(0).map((p) => p.close()));
    fx.upstream.reset();
    await Promise.all([...fx.cluster.nodes, fx.standalone].map((n) => n.client().flushall()));
  });
  afterAll(async () => {
    await Promise.all([fx.upstream?.close(), fx.cluster?.stop(), fx.standalone?.stop()]);
  });
  return fx;
}
