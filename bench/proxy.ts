/**
 * Proxy benchmark: the proxy's L1-hit, L2-hit and miss paths against bare baselines started in
 * the same run — fastify + lru-cache (memory) and fastify + ioredis (one Redis) serving the same
 * 4 KB body — with 50 connections (wrk -t1 when installed, else autocannon). Prints req/s, p99
 * and the ratios; the targets are L1 ≥ 0.9× bare LRU and L2 ≥ 0.9× bare ioredis.
 *
 * Each pair is measured twice: one server at a time (alternating rounds, medians), and side by
 * side — both servers on the same CPU at the same time, each under its own load generator — so
 * that the host's noise, which on a shared VM swings single runs by ±20 %, hits both alike.
 *
 * Then the production run (bench/production.ts): a Zipf trace over 20 000 URLs, L1 at its
 * default size, a Redis Cluster L2, against nginx proxy_cache and a bare two-tier server.
 *
 *   npm run bench:proxy   (BENCH_SECONDS=5 per run, BENCH_ROUNDS=3 alternating rounds,
 *                          BENCH_SIDE_ROUNDS=5 side-by-side rounds, BENCH_PIN=0 to not pin CPUs,
 *                          BENCH_PART=hot|production to run one part, BENCH_RATES=2000,5000
 *                          the production run's fixed rates in req/s)
 */
import { fileURLToPath } from 'node:url';
import { startRedis } from '../test/helpers/redis.ts';
import {
  benchProxyEnv,
  loadGenerator,
  measure,
  median,
  pinServer,
  printTable,
  type Result,
  reserveServerCpu,
  type Server,
  sideBySide,
  startServer,
} from './lib.ts';
import { nginxPath, startNginxCache } from './nginx.ts';
import { type ProductionReport, productionRun } from './production.ts';

const seconds = Number(process.env.BENCH_SECONDS ?? 5);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const sideRounds = Number(process.env.BENCH_SIDE_ROUNDS ?? 5);
const pinning = reserveServerCpu();

const byRps = (r: Result) => r.rps;

function spread(results: Result[]): string {
  const rps = results.map((r) => r.rps);
  return `runs ${Math.min(...rps).toFixed(0)}–${Math.max(...rps).toFixed(0)} req/s`;
}
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const CLI = here('../bin/tiercache.ts');

async function hotRun(): Promise<void> {
  const servers: Server[] = [];
  const redis = await startRedis();
  try {
    const upstream = await startServer([here('servers/upstream-4k.ts')]);
    servers.push(upstream);
    const proxyEnv = benchProxyEnv(upstream.url, {
      LOG_LEVEL: 'warn',
      REDIS_CLUSTER_NODES: `127.0.0.1:${redis.port}`,
    });
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
    for (const s of [proxyL1, proxyL2, bareLru, bareRedis]) pinServer(s);

    const path = '/3/movie/550';
    // Warm every cache (and give L2 time to connect), then measure.
    for (const s of [proxyL1, proxyL2, bareLru, bareRedis]) {
      for (let i = 0; i < 50; i++) await fetch(s.url + path).then((r) => r.arrayBuffer());
    }
    const check = await fetch(proxyL2.url + path);
    if (check.headers.get('x-cache') !== 'L2')
      throw new Error(`L2 path not hit (x-cache ${check.headers.get('x-cache')})`);

    // This machine has 2 cores shared by the load generator and the server, so single runs
    // swing by ±20 %. Each pair (baseline, tiercache) runs alternately `rounds` times and the
    // medians are compared; the spread is printed too.
    const pairs: [string, Server, string, Server][] = [
      ['bare fastify + lru-cache', bareLru, 'tiercache L1 hit', proxyL1],
      ['bare fastify + ioredis', bareRedis, 'tiercache L2 hit', proxyL2],
    ];
    const rows: (Result & { vs?: string })[] = [];
    const sideLines: string[] = [];
    for (const [baseName, baseServer, name, server] of pairs) {
      // Warm-up: let V8 optimise both servers' hot paths before anything is counted.
      await measure(baseName, baseServer, path, seconds);
      await measure(name, server, path, seconds);
      const base: Result[] = [];
      const ours: Result[] = [];
      for (let r = 0; r < rounds; r++) {
        base.push(await measure(baseName, baseServer, path, seconds));
        ours.push(await measure(name, server, path, seconds));
      }
      const b = median(base, byRps);
      const o = median(ours, byRps);
      rows.push({ ...b, vs: spread(base) });
      rows.push({
        ...o,
        vs: `${(o.rps / b.rps).toFixed(2)}× req/s, ${(b.cpuUs / o.cpuUs).toFixed(2)}× per CPU µs of ${baseName} (target ≥ 0.90); ${spread(ours)}`,
      });

      // Side by side: both on the same CPU at once, so each round's ratio is free of drift.
      const r = await sideBySide(
        () => measure(name, server, path, seconds),
        () => measure(baseName, baseServer, path, seconds),
        sideRounds,
      );
      sideLines.push(
        `${name} / ${baseName}: ${r.ratio.toFixed(2)}× (target ≥ 0.90; rounds ${r.rounds})`,
      );
    }
    // nginx proxy_cache, the reference caching reverse proxy, when installed. Its CPU column
    // counts only the master process (the worker is a child), so read its req/s.
    const nginx = nginxPath();
    if (nginx) {
      const cache = await startNginxCache(nginx, upstream.url);
      servers.push(cache);
      pinServer(cache);
      await measure('nginx proxy_cache hit', cache, path, 1);
      const ng = await measure('nginx proxy_cache hit', cache, path, seconds);
      const l1 = rows.find((r) => r.name === 'tiercache L1 hit')!;
      rows.push({
        ...ng,
        cpuUs: Number.NaN,
        vs: `tiercache L1 hit is ${(l1.rps / ng.rps).toFixed(2)}× this`,
      });
    } else {
      rows.push({
        name: 'nginx proxy_cache (not installed)',
        rps: Number.NaN,
        p99: Number.NaN,
        cpuUs: Number.NaN,
        non2xx: 0,
        errors: 0,
      });
    }
    const direct = await measure('upstream direct (4 KB)', upstream, path, seconds);
    const miss = await measure('tiercache miss (L3, L2 on)', proxyL2, '', seconds, {
      uniquePaths: '/3/movie/miss-',
    });
    rows.push(direct, { ...miss, vs: `${(miss.rps / direct.rps).toFixed(2)}× upstream direct` });

    console.log(
      `\nproxy benchmark: ${loadGenerator}, 4 KB JSON, ${rounds} alternating rounds of ${seconds} s, medians; node ${process.version}; ${pinning}\n`,
    );
    printTable(rows);
    console.log(
      `\nside by side (both servers on one CPU at the same time, ${sideRounds} rounds of ${seconds} s, median ratio of req/s):`,
    );
    for (const line of sideLines) console.log(`  ${line}`);
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await redis.stop();
  }
}

function printProduction(report: ProductionReport): void {
  console.log(`\n${report.header}; ${loadGenerator}; ${pinning}\n`);
  console.log('closed loop, each server alone on its CPU:');
  printTable(report.alone);
  console.log(
    `\nside by side (both on one CPU at the same time, ${sideRounds} rounds of ${seconds} s, median ratio of req/s):`,
  );
  for (const line of report.side) console.log(`  ${line}`);
  console.log('\nfixed rate (vegeta, open loop), each server alone; latencies in ms:');
  console.log(
    `${'server'.padEnd(28)} ${'rate'.padStart(6)} ${'sent/s'.padStart(7)} ${'p50'.padStart(6)} ${'p99'.padStart(6)} ${'max'.padStart(7)} ${'bad'.padStart(4)}`,
  );
  for (const r of report.latency)
    console.log(
      `${r.name.padEnd(28)} ${String(r.rate).padStart(6)} ${r.sent.toFixed(0).padStart(7)} ${r.p50.toFixed(2).padStart(6)} ${r.p99.toFixed(2).padStart(6)} ${r.max.toFixed(1).padStart(7)} ${String(r.bad).padStart(4)}  ${r.vs ?? ''}`,
    );
  for (const note of report.notes) console.log(`\n${note}`);
}

const part = process.env.BENCH_PART ?? 'all';
if (!['all', 'hot', 'production'].includes(part))
  throw new Error(`BENCH_PART must be one of all, hot, production (got "${part}")`);
if (part !== 'production') await hotRun();
if (part !== 'hot')
  printProduction(
    await productionRun({
      seconds,
      sideRounds,
      rates: (process.env.BENCH_RATES ?? '2000,5000').split(',').map(Number),
    }),
  );
