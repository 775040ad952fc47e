/**
 * What the proxy's L2 tests share: a demo upstream, a standalone Redis and (for the cluster
 * tests) a 3-master Redis Cluster, started once per file. Proxies a test registers are closed
 * after it, and every Redis is flushed, so each test starts from empty tiers.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { type DemoUpstream, startDemoUpstream } from '../../proxy/upstreams/demo-server.ts';
import type { RunningProxy } from './proxy.ts';
import { type RedisNode, startCluster, startRedis, type TestCluster } from './redis.ts';

export interface RedisFixture {
  upstream: DemoUpstream;
  standalone: RedisNode;
  /** Closed after each test. */
  proxies: RunningProxy[];
}

export interface L2Fixture extends RedisFixture {
  cluster: TestCluster;
}

function useServers(apiKey: string | undefined, withCluster: boolean): L2Fixture {
  const fx = { proxies: [] } as unknown as L2Fixture;
  const redisNodes = () => [...(fx.cluster?.nodes ?? []), fx.standalone];
  beforeAll(async () => {
    [fx.upstream, fx.standalone] = await Promise.all([
      startDemoUpstream(apiKey === undefined ? {} : { apiKey }),
      startRedis(),
    ]);
    if (withCluster) fx.cluster = await startCluster(3);
  });
  afterEach(async () => {
    await Promise.all(fx.proxies.splice(0).map((p) => p.close()));
    fx.upstream.reset();
    await Promise.all(redisNodes().map((n) => n.client().flushall()));
  });
  afterAll(async () => {
    await Promise.all([fx.upstream?.close(), fx.cluster?.stop(), fx.standalone?.stop()]);
  });
  return fx;
}

/** The demo upstream (checking `apiKey`), a 3-master Redis Cluster and a standalone Redis. */
export function useL2Fixture(apiKey: string): L2Fixture {
  return useServers(apiKey, true);
}

/** The demo upstream (checking `apiKey` when given) and a standalone Redis. */
export function useRedisFixture(apiKey?: string): RedisFixture {
  return useServers(apiKey, false);
}
