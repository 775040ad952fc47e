/**
 * A Redis master killed under load (issue 16): a 3-master + 3-replica Redis Cluster
 * (cluster-node-timeout 3000 ms) behind two proxies side by side, one as shipped and one with
 * L2_SOFT_TIMEOUT_MS=0 (waiting up to REDIS_READ_TIMEOUT for every L2 read, as before the soft
 * deadline): the known cost the method must show. L1 is off for JSON on both, so every request
 * asks L2 — the worst case. Each proxy gets a fixed rate of requests over 2 000 cached URLs;
 * after BENCH_KILL_AT seconds one master is killed (SIGKILL) and Redis promotes its replica.
 * Latency is measured from each request's scheduled start (no coordinated omission). Prints
 * requests over 1 s and non-2xx per proxy (targets: zero and zero).
 *
 *   npm run bench:master-kill   (BENCH_RATE=200 req/s per proxy, BENCH_SECONDS=20, BENCH_KILL_AT=5)
 */
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { Connections } from '../operator/redis/connections.ts';
import { createCluster } from '../operator/redis/create.ts';
import { observe } from '../operator/redis/observe.ts';
import { type RedisNode, startRedis } from '../test/helpers/redis.ts';
import { waitFor } from '../test/helpers/wait.ts';
import { benchProxyEnv, type Server, startServer, waitForL2 } from './lib.ts';

const RATE = Number(process.env.BENCH_RATE ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const KILL_AT = Number(process.env.BENCH_KILL_AT ?? 5);
const URLS = 2000;
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const CLI = here('../bin/tiercache.ts');
const addr = (n: RedisNode) => `${n.host}:${n.port}`;

interface Outcome {
  latencies: number[];
  non2xx: number;
  errors: number;
  byCache: Map<string, number>;
}

/** `rate` requests a second for `seconds`, each timed from when it was due. */
async function fixedRate(url: string, rate: number, seconds: number): Promise<Outcome> {
  const agent = new Agent({ connections: 64 });
  const out: Outcome = { latencies: [], non2xx: 0, errors: 0, byCache: new Map() };
  const started = performance.now();
  const total = rate * seconds;
  const inFlight: Promise<void>[] = [];
  let sent = 0;
  while (sent < total) {
    const now = performance.now();
    const due = Math.min(total, Math.floor(((now - started) / 1000) * rate));
    for (; sent < due; sent++) {
      const dueAt = started + (sent / rate) * 1000;
      const path = `/3/movie/${1 + Math.floor(Math.random() * URLS)}`;
      inFlight.push(
        request(url + path, { dispatcher: agent })
          .then(async (res) => {
            await res.body.arrayBuffer();
            out.latencies.push(performance.now() - dueAt);
            if (res.statusCode < 200 || res.statusCode > 299) out.non2xx += 1;
            const cache = String(res.headers['x-cache'] ?? '?');
            out.byCache.set(cache, (out.byCache.get(cache) ?? 0) + 1);
          })
          .catch(() => {
            out.errors += 1;
          }),
      );
    }
    await new Promise((r) => setTimeout(r, 5));
  }
  await Promise.all(inFlight);
  await agent.close();
  return out;
}

const conns = new Connections({ timeoutMs: 10_000 });
const nodes: RedisNode[] = [];
const servers: Server[] = [];
try {
  for (let i = 0; i < 6; i++) {
    const n = await startRedis({ cluster: true });
    await n.client().config('SET', 'cluster-node-timeout', '3000');
    nodes.push(n);
  }
  await createCluster(conns, nodes.map(addr), { replicas: 1 });
  await waitFor(
    'cluster_state:ok',
    async () =>
      ((await nodes[0]!.client().call('CLUSTER', 'INFO')) as string).includes('cluster_state:ok'),
    20_000,
    100,
  );
  const upstream = await startServer([here('servers/upstream-4k.ts')]);
  servers.push(upstream);
  const env = benchProxyEnv(upstream.url, {
    JSON_MEMORY_TTL: '0',
    REDIS_CLUSTER_NODES: nodes.map(addr).join(','),
    REDIS_MODE: 'cluster',
  });
  const shipped = await startServer([CLI, 'proxy'], env);
  const noSoft = await startServer([CLI, 'proxy'], { ...env, L2_SOFT_TIMEOUT_MS: '0' });
  servers.push(shipped, noSoft);
  await waitForL2([shipped, noSoft]);
  // Every URL in L2 before the load starts.
  for (let i = 1; i <= URLS; i += 100)
    await Promise.all(
      Array.from({ length: 100 }, (_, j) =>
        fetch(`${shipped.url}/3/movie/${i + j}`).then((r) => r.arrayBuffer()),
      ),
    );

  const masters = (await observe(conns, [addr(nodes[0]!)])).reports.filter((r) =>
    r.nodes.find((n) => n.flags.has('myself'))!.flags.has('master'),
  );
  const victim = nodes.find((n) => addr(n) === masters[0]!.addr)!;
  const kill = setTimeout(() => void victim.kill(), KILL_AT * 1000);
  const [a, b] = await Promise.all([
    fixedRate(shipped.url, RATE, SECONDS),
    fixedRate(noSoft.url, RATE, SECONDS),
  ]);
  clearTimeout(kill);

  const line = (name: string, o: Outcome) => {
    const sorted = [...o.latencies].sort((x, y) => x - y);
    const q = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
    const over1s = sorted.filter((ms) => ms > 1000).length;
    const sources = [...o.byCache].map(([k, v]) => `${k} ${v}`).join(', ');
    console.log(
      `${name.padEnd(36)} ${String(sorted.length).padStart(6)} req  over 1 s: ${String(over1s).padStart(4)}  non-2xx: ${o.non2xx}  errors: ${o.errors}  p50 ${q(0.5).toFixed(1)} ms  p99 ${q(0.99).toFixed(1)} ms  max ${sorted.at(-1)!.toFixed(0)} ms  (${sources})`,
    );
  };
  console.log(
    `master ${addr(victim)} killed at ${KILL_AT} s of ${SECONDS} s; ${RATE} req/s to each proxy, L1 off for JSON\n`,
  );
  line('tiercache (L2_SOFT_TIMEOUT_MS=50)', a);
  line('soft deadline off (=0)', b);
} finally {
  await Promise.all(servers.map((s) => s.stop()));
  conns.close();
  await Promise.all(nodes.map((n) => n.stop()));
}
