/**
 * Region-local reads benchmark (issue 19): the L2 hit latency of a proxy in a region far from
 * the masters, reading from the masters (REDIS_READ_FROM=master) and from the replicas in its
 * own region (nearest), against the home region's, on one 3 × 1 Redis Cluster. "Far" is a relay
 * adding REGION_DELAY_MS (40) each way in front of every master, which the masters announce
 * as their address; the replicas stay direct. The home figure is taken first, before the
 * masters move behind their relays. One request at a time, L1 off for JSON (JSON_MEMORY_TTL=0),
 * so every request is an L2 hit.
 *
 *   npm run bench:regional-reads   (BENCH_SAMPLES=200)
 */
import { fileURLToPath } from 'node:url';
import { Connections } from '../operator/redis/connections.ts';
import { createCluster } from '../operator/redis/create.ts';
import { startDemoUpstream } from '../proxy/upstreams/demo-server.ts';
import { behindRelays, type DelayProxy } from '../test/helpers/delay-proxy.ts';
import { type RedisNode, startNodes } from '../test/helpers/redis.ts';
import { waitFor } from '../test/helpers/wait.ts';
import { benchProxyEnv, type Server, startServer, waitForL2 } from './lib.ts';

const DELAY_MS = Number(process.env.REGION_DELAY_MS ?? 40);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 200);
const CLI = fileURLToPath(new URL('../bin/tiercache.ts', import.meta.url));
const addr = (n: RedisNode) => `${n.host}:${n.port}`;

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

/** Every sample an L2 hit; their latencies in ms. */
async function hits(proxy: Server, ids: number[]): Promise<number[]> {
  const out: number[] = [];
  for (const id of ids) {
    const t0 = performance.now();
    const res = await fetch(`${proxy.url}/3/movie/${id}`);
    await res.arrayBuffer();
    out.push(performance.now() - t0);
    if (res.headers.get('x-cache') !== 'L2')
      throw new Error(`movie ${id}: x-cache ${res.headers.get('x-cache')}, not L2`);
  }
  return out;
}

const nodes = await startNodes(6, { cluster: true });
const conns = new Connections({ timeoutMs: 5000 });
const upstream = await startDemoUpstream({ apiKey: 'bench' });
const relays: DelayProxy[] = [];
const servers: Server[] = [];
try {
  const plan = await createCluster(conns, nodes.map(addr), { replicas: 1 });
  const masters = plan.masters.map((m) => nodes.find((n) => addr(n) === m.addr)!);
  const replicas = plan.replicas.map((r) => nodes.find((n) => addr(n) === r.addr)!);
  const env = benchProxyEnv(upstream.url, {
    REDIS_CLUSTER_NODES: replicas.map(addr).join(','),
    REDIS_MODE: 'cluster',
    JSON_MEMORY_TTL: '0',
  });
  const ids = Array.from({ length: SAMPLES }, (_, i) => 1 + i);

  // Home: everything near. Fills the cache too.
  const home = await startServer([CLI, 'proxy'], { ...env, REGION: 'home' });
  servers.push(home);
  await waitForL2([home]);
  for (const id of ids) await (await fetch(`${home.url}/3/movie/${id}`)).arrayBuffer();
  await hits(home, ids.slice(0, 20)); // warm-up
  const homeMs = await hits(home, ids);

  // The masters move far away.
  relays.push(...(await behindRelays(masters, nodes, DELAY_MS)));
  await waitFor(
    'the slot map to list the replicas',
    async () =>
      (await conns.call<unknown[][]>(addr(replicas[0]!), 'CLUSTER', 'SLOTS')).every(
        (s) => s.length > 3,
      ),
    20_000,
    100,
  );
  const far = await startServer([CLI, 'proxy'], { ...env, REGION: 'far-masters' });
  const near = await startServer([CLI, 'proxy'], {
    ...env,
    REGION: 'far-nearest',
    REDIS_READ_FROM: 'nearest',
  });
  servers.push(far, near);
  await waitForL2([far, near]);
  await waitFor(
    'the nearest-reading proxy to know every node',
    async () => {
      const status = (await (await fetch(`${near.url}/status`)).json()) as {
        l2_node_latency_ms: { main?: Record<string, number | null> };
      };
      return (
        Object.values(status.l2_node_latency_ms.main ?? {}).filter((ms) => ms !== null).length === 6
      );
    },
    20_000,
    200,
  );
  await hits(far, ids.slice(0, 10));
  await hits(near, ids.slice(0, 20));
  const farMs = await hits(far, ids);
  const nearMs = await hits(near, ids);

  const line = (what: string, xs: number[]) =>
    `${what.padEnd(34)} p50 ${quantile(xs, 0.5).toFixed(2).padStart(6)} ms   p90 ${quantile(xs, 0.9).toFixed(2).padStart(6)} ms`;
  console.log(
    `L2 hits, ${SAMPLES} one at a time; masters ${DELAY_MS} ms away each way from the far region\n`,
  );
  console.log(line('home region (masters near)', homeMs));
  console.log(line('far region, reads from masters', farMs));
  console.log(line('far region, REDIS_READ_FROM=nearest', nearMs));
  const gap = quantile(nearMs, 0.5) - quantile(homeMs, 0.5);
  console.log(
    `\nfar (nearest) p50 − home p50 = ${gap.toFixed(2)} ms (target ≤ 1 ms); far (masters) is ${(quantile(farMs, 0.5) / quantile(nearMs, 0.5)).toFixed(1)}× far (nearest)`,
  );
} finally {
  await Promise.all(servers.map((s) => s.stop()));
  await Promise.all(relays.map((r) => r.close()));
  conns.close();
  await upstream.close();
  await Promise.all(nodes.map((n) => n.stop()));
}
