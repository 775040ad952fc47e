/**
 * Proxy benchmark: the proxy's L1-hit, L2-hit and miss paths against bare baselines started in
 * the same run — fastify + lru-cache (memory) and fastify + ioredis (one Redis) serving the same
 * 4 KB body — with 50 connections from autocannon. Prints req/s, p99 and the ratios; the
 * targets are L1 ≥ 0.9× bare LRU and L2 ≥ 0.9× bare ioredis.
 *
 *   npm run bench:proxy            (BENCH_SECONDS=10 by default)
 */
import { fileURLToPath } from 'node:url';
import { startRedis } from '../test/helpers/redis.ts';
import { measure, printTable, type Result, type Server, startServer } from './lib.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 10);
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const CLI = here('../bin/tiercache.ts');

const servers: Server[] = [];
const redis = await startRedis();
try {
  const upstream = await startServer([here('servers/upstream-4k.ts')]);
  servers.push(upstream);
  const proxyEnv = {
    TMDB_API_URL: upstream.url,
    TMDB_API_KEY: 'bench',
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'warn',
    REDIS_CLUSTER_NODES: `127.0.0.1:${redis.port}`,
  };
  const start = async (args: string[], env: Record<string, string> = {}) => {
    const s = await startServer(args, env);
    servers.push(s);
    return s;
  };
  const proxyL1 = await start([CLI, 'proxy'], { ...proxyEnv, LOG_LEVEL: 'info' });
  const proxyL2 = await start([CLI, 'proxy'], {
    ...proxyEnv,
    LOG_LEVEL: 'info',
    JSON_MEMORY_TTL: '0',
  });
  const bareLru = await start([here('servers/bare-lru.ts')]);
  const bareRedis = await start([here('servers/bare-ioredis.ts'), String(redis.port)]);

  const path = '/3/movie/550';
  // Warm every cache (and give L2 time to connect), then measure.
  for (const s of [proxyL1, proxyL2, bareLru, bareRedis]) {
    for (let i = 0; i < 50; i++) await fetch(s.url + path).then((r) => r.arrayBuffer());
  }
  const check = await fetch(proxyL2.url + path);
  if (check.headers.get('x-cache') !== 'L2')
    throw new Error(`L2 path not hit (x-cache ${check.headers.get('x-cache')})`);

  const warm = Math.max(1, Math.round(seconds / 5));
  const run = async (name: string, url: string, opts = {}) => {
    await measure(name, url, warm, opts);
    return measure(name, url, seconds, opts);
  };
  const lru = await run('bare fastify + lru-cache', bareLru.url + path);
  const l1 = await run('tiercache L1 hit', proxyL1.url + path);
  const ior = await run('bare fastify + ioredis', bareRedis.url + path);
  const l2 = await run('tiercache L2 hit', proxyL2.url + path);
  const direct = await run('upstream direct (4 KB)', upstream.url + path);
  const miss = await run('tiercache miss (L3, L2 on)', proxyL2.url, {
    uniquePaths: '/3/movie/miss-',
  });

  const ratio = (a: Result, b: Result) => `${(a.rps / b.rps).toFixed(2)}× ${b.name}`;
  console.log(
    `\nproxy benchmark: ${seconds} s per path, 50 connections, 4 KB JSON, node ${process.version}\n`,
  );
  printTable([
    lru,
    { ...l1, vs: `${ratio(l1, lru)} (target ≥ 0.90)` },
    ior,
    { ...l2, vs: `${ratio(l2, ior)} (target ≥ 0.90)` },
    direct,
    { ...miss, vs: ratio(miss, direct) },
  ]);
} finally {
  await Promise.all(servers.map((s) => s.stop()));
  await redis.stop();
}
