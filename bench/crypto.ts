/**
 * Crypto benchmark: a Zipf-distributed trace over the demo upstream's 2 000 symbols and mixed
 * chart ranges through one proxy with L2; prints hit rates per tier, upstream calls saved, and
 * p50/p99 latency of /api/latest_prices with 50 symbols on the L1-hit and miss paths.
 *
 *   npm run bench:crypto      (BENCH_REQUESTS=20000)
 */
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { demoCoins } from '../proxy/upstreams/demo-coingecko.ts';
import { startDemoUpstream } from '../proxy/upstreams/demo-server.ts';
import { startRedis } from '../test/helpers/redis.ts';
import { type Server, startServer, zipf } from './lib.ts';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 20_000);
const CONCURRENCY = 20;
const CLI = fileURLToPath(new URL('../bin/tiercache.ts', import.meta.url));
const symbols = demoCoins.map((c) => c.symbol.toUpperCase());

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function get(url: string): Promise<{ ms: number; cache: string }> {
  const started = performance.now();
  const res = await request(url);
  await res.body.arrayBuffer();
  if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`);
  return { ms: performance.now() - started, cache: String(res.headers['x-cache'] ?? '?') };
}

async function run(
  urls: string[],
  concurrency: number,
): Promise<{ ms: number[]; caches: Map<string, number> }> {
  const ms: number[] = [];
  const caches = new Map<string, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < urls.length) {
        const r = await get(urls[next++]!);
        ms.push(r.ms);
        caches.set(r.cache, (caches.get(r.cache) ?? 0) + 1);
      }
    }),
  );
  return { ms: ms.sort((a, b) => a - b), caches };
}

const servers: Server[] = [];
const upstream = await startDemoUpstream();
const redis = await startRedis();
try {
  const env = {
    CRYPTO_API_URL: `${upstream.url}/api/v3`,
    HOST: '127.0.0.1',
    PORT: '0',
    LOG_LEVEL: 'info',
    REDIS_CLUSTER_NODES: `127.0.0.1:${redis.port}`,
    ADMIN_TOKEN: 'bench-admin',
  };
  const proxy = await startServer([CLI, 'proxy'], env);
  const noCache = await startServer([CLI, 'proxy'], {
    ...env,
    REDIS_CLUSTER_NODES: '',
    USE_REDIS: 'false',
    CRYPTO_PRICE_TTL: '0',
  });
  servers.push(proxy, noCache);
  await new Promise((r) => setTimeout(r, 500)); // L2 connects in the background

  // 1. The Zipf trace: prices for 1–10 popular-skewed symbols, and charts of mixed ranges.
  const pick = zipf(symbols.length, 1.1);
  const trace = Array.from({ length: REQUESTS }, () => {
    if (Math.random() < 0.7) {
      const set = new Set(
        Array.from({ length: 1 + Math.floor(Math.random() * 10) }, () => symbols[pick()]!),
      );
      return `${proxy.url}/api/latest_prices?symbols=${[...set].join(',')}`;
    }
    const [range, interval] = [
      ['1d', 'hourly'],
      ['7d', 'hourly'],
      ['30d', 'daily'],
      ['90d', 'daily'],
    ][Math.floor(Math.random() * 4)]!;
    return `${proxy.url}/api/chart_data?symbol=${symbols[pick()]}&interval=${interval}&range=${range}`;
  });
  const before = upstream.stats.total;
  const traced = await run(trace, CONCURRENCY);
  const calls = upstream.stats.total - before;
  const stats = (await (
    await fetch(`${proxy.url}/api/cache/stats`, {
      headers: { authorization: 'Bearer bench-admin' },
    })
  ).json()) as Record<string, number>;

  // 2. latest_prices with 50 symbols: the same 50 (L1 hits) and through a proxy that caches nothing (misses).
  const fifty = symbols.slice(100, 150).join(',');
  await get(`${proxy.url}/api/latest_prices?symbols=${fifty}`);
  const hits = await run(
    Array.from({ length: 3000 }, () => `${proxy.url}/api/latest_prices?symbols=${fifty}`),
    10,
  );
  const misses = await run(
    Array.from({ length: 1000 }, () => `${noCache.url}/api/latest_prices?symbols=${fifty}`),
    10,
  );

  console.log(
    `\ncrypto benchmark: ${REQUESTS} requests, Zipf(1.1) over ${symbols.length} symbols, ${CONCURRENCY} clients, node ${process.version}\n`,
  );
  console.log(
    `answers by source     ${[...traced.caches].map(([k, v]) => `${k} ${v}`).join(', ')}`,
  );
  console.log(
    `hit rates             L1 ${stats.l1_hit_rate}, L2 ${stats.l2_hit_rate}, overall ${stats.overall_hit_rate}`,
  );
  console.log(
    `upstream calls        ${calls} for ${REQUESTS} requests (${(100 * (1 - calls / REQUESTS)).toFixed(1)} % of requests needed no upstream call)`,
  );
  console.log(
    `trace latency         p50 ${percentile(traced.ms, 50).toFixed(2)} ms, p99 ${percentile(traced.ms, 99).toFixed(2)} ms`,
  );
  console.log(
    `50 symbols, L1 hit    p50 ${percentile(hits.ms, 50).toFixed(2)} ms, p99 ${percentile(hits.ms, 99).toFixed(2)} ms`,
  );
  console.log(
    `50 symbols, miss      p50 ${percentile(misses.ms, 50).toFixed(2)} ms, p99 ${percentile(misses.ms, 99).toFixed(2)} ms (one batched upstream call each)`,
  );
} finally {
  await Promise.all(servers.map((s) => s.stop()));
  await upstream.close();
  await redis.stop();
}
