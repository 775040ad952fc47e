/**
 * The proxy in front of a Redis Cluster that is being resharded (add-shard + rebalance, as the
 * operator will do when scaling out): every request is answered, and L2 keeps working through
 * MOVED/ASK redirections instead of failing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Connections } from '../../operator/redis/connections.ts';
import { createCluster } from '../../operator/redis/create.ts';
import { addShard } from '../../operator/redis/reshard.ts';
import { type DemoUpstream, startDemoUpstream } from '../../proxy/upstreams/demo-server.ts';
import { json } from '../helpers/json.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { type RedisNode, startRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

let upstream: DemoUpstream;
let list: RedisNode[];
let proxy: RunningProxy;
const conns = new Connections({ timeoutMs: 5000 });
const addr = (n: RedisNode) => `${n.host}:${n.port}`;

beforeAll(async () => {
  upstream = await startDemoUpstream();
  list = await Promise.all(Array.from({ length: 4 }, () => startRedis({ cluster: true })));
  await createCluster(conns, list.slice(0, 3).map(addr), { replicas: 0 });
  // L1 off for JSON, so every request is an L2 lookup.
  proxy = await startProxy({
    TMDB_API_URL: upstream.url,
    REDIS_CLUSTER_NODES: list.slice(0, 3).map(addr).join(','),
    JSON_MEMORY_TTL: '0',
  });
  await waitFor('L2', async () => (await json(fetch(`${proxy.url}/ready`))).l2 === 'ok');
});

afterAll(async () => {
  conns.close();
  await proxy?.close();
  await upstream?.close();
  await Promise.all((list ?? []).map((n) => n.stop()));
});

describe('the proxy while the cluster is resharded', () => {
  it('answers every request and keeps serving from L2 through the slot moves', async () => {
    const IDS = 2000;
    for (let i = 0; i < IDS; i += 200)
      await Promise.all(
        Array.from({ length: 200 }, (_, j) => fetch(`${proxy.url}/3/movie/${i + j + 1}`)),
      );
    const warmCalls = upstream.stats.total;

    let running = true;
    const sources = new Map<string, number>();
    const statuses = new Map<number, number>();
    const loops = Array.from({ length: 8 }, async () => {
      while (running) {
        const res = await fetch(`${proxy.url}/3/movie/${1 + Math.floor(Math.random() * IDS)}`);
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const src = res.headers.get('x-cache') ?? '?';
        sources.set(src, (sources.get(src) ?? 0) + 1);
      }
    });
    const result = await addShard(
      conns,
      addr(list[0]!),
      { master: addr(list[3]!), replicas: [] },
      { rebalance: true },
    );
    running = false;
    await Promise.all(loops);

    expect(result!.keysMoved).toBeGreaterThan(0);
    expect(Object.fromEntries(statuses)).toEqual({ 200: expect.any(Number) });
    const metrics = await (await fetch(`${proxy.url}/metrics`)).text();
    expect(metrics).not.toMatch(/tiercache_l2_errors_total\{[^}]*\} [1-9]/);
    // Nothing fell through to the upstream but what a slow L2 read let go of at the soft
    // deadline (L2_SOFT_TIMEOUT_MS: a request answers from upstream rather than wait on a
    // node busy moving keys); those are counted, and few.
    const slow = Number(/tiercache_l2_slow_reads_total\{[^}]*\} (\d+)/.exec(metrics)?.[1] ?? 0);
    expect(upstream.stats.total - warmCalls).toBeLessThanOrEqual(slow);
    expect(slow).toBeLessThan(sources.get('L2')! / 100);
    expect(sources.get('L2')).toBeGreaterThan(100);
  }, 120_000);
});
