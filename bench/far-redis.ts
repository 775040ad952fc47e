/**
 * Far-Redis benchmark (issue 16): a proxy whose every Redis packet crosses a relay adding
 * FAR_REDIS_DELAY_MS (40) each way, as a region far from the masters sees them, in front of a
 * 3-master Redis Cluster (its nodes announce the relays, so ioredis follows the slot map
 * through them). The upstream (the demo, in this process) answers after UPSTREAM_DELAY_MS (50).
 * One request at a time, so each figure is that request's own latency:
 *
 * - a TMDB miss, minus the upstream's own latency, in Redis round trips (target ≤ 1);
 * - an L2 hit on a second replica (target: p50 ≤ 1 round trip);
 * - a cold 50-symbol price batch, minus one upstream call (target ≤ 2 round trips);
 * - a cold 365-day chart (365 day chunks), minus one upstream call.
 *
 *   npm run bench:far-redis   (BENCH_SAMPLES=20 per figure)
 */
import { fileURLToPath } from 'node:url';
import { startDemoUpstream } from '../proxy/upstreams/demo-server.ts';
import { behindRelays, type DelayProxy } from '../test/helpers/delay-proxy.ts';
import { startCluster } from '../test/helpers/redis.ts';
import { benchProxyEnv, type Server, startServer, waitForL2 } from './lib.ts';

const DELAY_MS = Number(process.env.FAR_REDIS_DELAY_MS ?? 40);
const UPSTREAM_MS = Number(process.env.UPSTREAM_DELAY_MS ?? 50);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 20);
const RTT = 2 * DELAY_MS;
const CLI = fileURLToPath(new URL('../bin/tiercache.ts', import.meta.url));

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

async function timed(url: string, expectCache?: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(url);
  await res.arrayBuffer();
  const ms = performance.now() - t0;
  if (res.status !== 200) throw new Error(`${url}: ${res.status}`);
  const cache = res.headers.get('x-cache');
  if (expectCache && cache !== expectCache)
    throw new Error(`${url}: x-cache ${cache}, not ${expectCache}`);
  return ms;
}

const cluster = await startCluster(3);
const relays: DelayProxy[] = [];
const servers: Server[] = [];
const upstream = await startDemoUpstream({ apiKey: 'bench' });
try {
  // Every node announces its relay as its client port (the bus stays direct).
  relays.push(...(await behindRelays(cluster.nodes, cluster.nodes, DELAY_MS)));

  const env = benchProxyEnv(upstream.url, {
    CRYPTO_API_URL: `${upstream.url}/api/v3`,
    CRYPTO_API_KEY: 'bench',
    REDIS_CLUSTER_NODES: relays.map((r) => `127.0.0.1:${r.port}`).join(','),
    REDIS_MODE: 'cluster',
  });
  const a = await startServer([CLI, 'proxy'], env);
  const b = await startServer([CLI, 'proxy'], env);
  servers.push(a, b);
  await waitForL2([a, b]);

  upstream.control.delayMs = UPSTREAM_MS;
  // The upstream's own latency, asked directly (the demo checks the key as TMDB would).
  const direct: number[] = [];
  for (let i = 0; i < SAMPLES; i++)
    direct.push(await timed(`${upstream.url}/3/movie/${900_000 + i}?api_key=bench`));
  // Warm-up: connections to every relay and V8's first compiles.
  for (let i = 0; i < 10; i++) await timed(`${a.url}/3/movie/${800_000 + i}`);

  const miss: number[] = [];
  for (let i = 0; i < SAMPLES; i++)
    miss.push(await timed(`${a.url}/3/movie/${100_000 + i}`, 'MISS'));
  // Let the writes behind the misses land before the other replica asks.
  await new Promise((r) => setTimeout(r, 4 * RTT));
  const l2: number[] = [];
  for (let i = 0; i < SAMPLES; i++) l2.push(await timed(`${b.url}/3/movie/${100_000 + i}`, 'L2'));

  // Coin list cached first (as it is after a proxy's first minute), then cold batches.
  await timed(`${a.url}/api/latest_prices?symbols=c0999`);
  const batchSamples = Math.max(3, Math.floor(SAMPLES / 4));
  const batch: number[] = [];
  for (let n = 0; n < batchSamples; n++) {
    const symbols = Array.from(
      { length: 50 },
      (_, i) => `C${String(1000 + n * 50 + i).padStart(4, '0')}`,
    );
    batch.push(await timed(`${a.url}/api/latest_prices?symbols=${symbols.join(',')}`, 'MISS'));
  }

  // A cold 365-day daily chart: 365 chunks looked for at once, one upstream call, written behind.
  const chart: number[] = [];
  for (const symbol of ['C0500', 'C0501', 'C0502'])
    chart.push(
      await timed(`${a.url}/api/chart_data?symbol=${symbol}&interval=daily&range=365d`, 'MISS'),
    );

  const up = quantile(direct, 0.5);
  const trips = (ms: number) => ((ms - up) / RTT).toFixed(2);
  console.log(
    `Redis ${DELAY_MS} ms away each way (round trip ${RTT} ms), upstream ${UPSTREAM_MS} ms; ${SAMPLES} samples, one request at a time\n`,
  );
  console.log(`upstream alone          p50 ${up.toFixed(1)} ms`);
  console.log(
    `TMDB miss               p50 ${quantile(miss, 0.5).toFixed(1)} ms, p90 ${quantile(miss, 0.9).toFixed(1)} ms  → ${trips(quantile(miss, 0.5))} Redis round trips beyond the upstream (target ≤ 1)`,
  );
  console.log(
    `L2 hit (other replica)  p50 ${quantile(l2, 0.5).toFixed(1)} ms, p90 ${quantile(l2, 0.9).toFixed(1)} ms  → ${(quantile(l2, 0.5) / RTT).toFixed(2)} round trips (target ≤ 1)`,
  );
  console.log(
    `cold 50-symbol batch    p50 ${quantile(batch, 0.5).toFixed(1)} ms, max ${Math.max(...batch).toFixed(1)} ms  → ${trips(quantile(batch, 0.5))} round trips beyond one upstream call (target ≤ 2)`,
  );
  console.log(
    `cold 365-day chart      p50 ${quantile(chart, 0.5).toFixed(1)} ms, max ${Math.max(...chart).toFixed(1)} ms  → ${trips(quantile(chart, 0.5))} round trips beyond one upstream call`,
  );
} finally {
  await Promise.all(servers.map((s) => s.stop()));
  await Promise.all(relays.map((r) => r.close()));
  await upstream.close();
  await cluster.stop();
}
