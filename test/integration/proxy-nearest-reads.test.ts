/**
 * Region-local L2 reads (REDIS_READ_FROM=nearest) on a real 3 × 1 Redis Cluster whose masters
 * sit behind relays adding 20 ms each way — a proxy in a region far from the masters, with the
 * replicas in its own region. Its L2 hits are answered by the replicas (no GET reaches a
 * master), a key it just filled is not fetched twice while the fill replicates, and a lost
 * replica sends its slots' reads back to their master. How much faster a hit gets is measured
 * by bench/regional-reads.ts, not asserted here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Connections, parseInfo } from '../../operator/redis/connections.ts';
import { createCluster } from '../../operator/redis/create.ts';
import { type DemoUpstream, startDemoUpstream } from '../../proxy/upstreams/demo-server.ts';
import { behindRelays, type DelayProxy } from '../helpers/delay-proxy.ts';
import { json } from '../helpers/json.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { type RedisNode, startNodes } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

const API_KEY = '0123456789abcdef0123456789abcdef';
const DELAY_MS = 20;

let upstream: DemoUpstream;
let nodes: RedisNode[];
let masters: RedisNode[];
let replicas: RedisNode[];
const relays: DelayProxy[] = [];
const conns = new Connections({ timeoutMs: 5000 });
let nearest: RunningProxy;
let fromMasters: RunningProxy;
const addr = (n: RedisNode) => `${n.host}:${n.port}`;

beforeAll(async () => {
  [upstream, nodes] = await Promise.all([
    startDemoUpstream({ apiKey: API_KEY }),
    startNodes(6, { cluster: true }),
  ]);
  const plan = await createCluster(conns, nodes.map(addr), { replicas: 1 });
  const byAddr = new Map(nodes.map((n) => [addr(n), n]));
  masters = plan.masters.map((m) => byAddr.get(m.addr)!);
  replicas = plan.replicas.map((r) => byAddr.get(r.addr)!);
  // The masters are "far": each announces a relay as its client port (the bus stays direct).
  relays.push(...(await behindRelays(masters, nodes, DELAY_MS)));
  const env = {
    TMDB_API_URL: upstream.url,
    TMDB_API_KEY: API_KEY,
    // The replicas are the proxy's way in, as its region's nodes would be.
    REDIS_CLUSTER_NODES: replicas.map(addr).join(','),
    REDIS_MODE: 'cluster',
    // No L1 for JSON: every request looks in L2.
    JSON_MEMORY_TTL: '0',
  };
  [nearest, fromMasters] = await Promise.all([
    startProxy({ ...env, REGION: 'far-nearest', REDIS_READ_FROM: 'nearest' }),
    startProxy({ ...env, REGION: 'far-masters' }),
  ]);
  for (const p of [nearest, fromMasters])
    await waitFor(`L2 on ${p.url}`, async () => (await json(fetch(`${p.url}/ready`))).l2 === 'ok');
}, 60_000);

afterAll(async () => {
  await Promise.all([nearest?.close(), fromMasters?.close()]);
  await Promise.all(relays.map((r) => r.close()));
  conns.close();
  await Promise.all([upstream?.close(), ...(nodes ?? []).map((n) => n.stop())]);
});

/** GET calls each node has served (INFO commandstats), by address. */
async function getCalls(): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  for (const n of nodes) {
    const stats = parseInfo(await conns.call<string>(addr(n), 'INFO', 'commandstats'));
    out.set(addr(n), Number(/calls=(\d+)/.exec(stats.cmdstat_get ?? '')?.[1] ?? 0));
  }
  return out;
}

/** The proxy's measured latency of every node, once it knows all six. */
const latencies = (p: RunningProxy) =>
  waitFor(
    'a latency for every node',
    async () => {
      const ms = (await json(fetch(`${p.url}/status`))).l2_node_latency_ms?.main ?? {};
      return Object.keys(ms).length === 6 ? (ms as Record<string, number | null>) : undefined;
    },
    15_000,
    200,
  );

async function getAll(p: RunningProxy, ids: number[]): Promise<string[]> {
  const caches: string[] = [];
  for (const id of ids) {
    const res = await fetch(`${p.url}/3/movie/${id}`);
    expect(res.status).toBe(200);
    expect((await json(res)).id).toBe(id);
    caches.push(res.headers.get('x-cache')!);
  }
  return caches;
}

/** Every master's writes have reached its replica (same key count on both). */
const replicated = () =>
  waitFor(
    'the replicas to have every key',
    async () => {
      const counts = await Promise.all(nodes.map((n) => conns.call<number>(addr(n), 'DBSIZE')));
      const total = (list: RedisNode[]) =>
        list.reduce((sum, n) => sum + counts[nodes.indexOf(n)]!, 0);
      return total(masters) === total(replicas);
    },
    10_000,
    50,
  );

describe('region-local L2 reads (REDIS_READ_FROM=nearest)', () => {
  const ids = Array.from({ length: 100 }, (_, i) => 1000 + i);

  it('answers L2 hits from the replicas: no GET reaches a master', async () => {
    expect(await getAll(fromMasters, ids)).toEqual(ids.map(() => 'MISS'));
    await replicated();
    const ms = await latencies(nearest);
    // The relays are what makes the masters far: measured, not configured.
    for (const m of masters)
      expect(ms[`127.0.0.1:${relays[masters.indexOf(m)]!.port}`]).toBeGreaterThan(2 * DELAY_MS - 5);
    const before = await getCalls();
    expect(await getAll(nearest, ids)).toEqual(ids.map(() => 'L2'));
    const after = await getCalls();
    const served = (list: RedisNode[]) =>
      list.reduce((n, node) => n + after.get(addr(node))! - before.get(addr(node))!, 0);
    // At most a background read or two of the other proxy's (its bus's clear generation).
    expect(served(masters)).toBeLessThan(5);
    expect(served(replicas)).toBeGreaterThanOrEqual(ids.length);
    // The proxy that reads from the masters still does.
    const mid = await getCalls();
    expect(await getAll(fromMasters, ids.slice(0, 10))).toEqual(ids.slice(0, 10).map(() => 'L2'));
    const end = await getCalls();
    expect(
      masters.reduce((n, m) => n + end.get(addr(m))! - mid.get(addr(m))!, 0),
    ).toBeGreaterThanOrEqual(10);
  });

  it('does not fetch a key twice while its fill replicates: the miss looks again on the master', async () => {
    const fresh = Array.from({ length: 20 }, (_, i) => 2000 + i);
    for (const id of fresh) {
      const first = await fetch(`${nearest.url}/3/movie/${id}`);
      expect(first.headers.get('x-cache')).toBe('MISS');
      await first.arrayBuffer();
      // At once, before the replica may have it: L2 all the same (the replica's or the master's).
      const second = await fetch(`${nearest.url}/3/movie/${id}`);
      expect(second.headers.get('x-cache')).toBe('L2');
      await second.arrayBuffer();
      expect(upstream.stats.byPath[`/3/movie/${id}`]).toBe(1);
    }
  });

  it('sends a lost replica’s reads back to its master once its PING fails', async () => {
    const lost = replicas[0]!;
    await lost.kill();
    // Its PING fails (null), or its connection is gone from the client (no longer listed).
    await waitFor(
      `${addr(lost)} seen as unreachable`,
      async () =>
        ((await json(fetch(`${nearest.url}/status`))).l2_node_latency_ms.main[addr(lost)] ??
          null) === null,
      15_000,
      200,
    );
    const calls = upstream.stats.total;
    expect(await getAll(nearest, ids)).toEqual(ids.map(() => 'L2'));
    expect(upstream.stats.total).toBe(calls);
  });
});
