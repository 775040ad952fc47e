/**
 * The production run of bench:proxy: what users run, rather than one hot URL. A Zipf-like
 * trace over 20 000 TMDB movie URLs (distinct ~4 KB documents that compress like real JSON),
 * tiercache with L1 at its default size in front of a 3-master Redis Cluster, side by side with
 * nginx proxy_cache (1 worker) and a bare fastify + lru-cache + ioredis Cluster server doing the
 * same two-tier lookup, all warmed with every URL first.
 *
 * - Throughput, closed loop (wrk -t1 -c50 cycling the trace): each server alone, then pairs side
 *   by side on one CPU (the ratio of their req/s is the inverse ratio of their cost per request).
 * - Latency, open loop at fixed rates (vegeta): p50, p99, max of each server alone.
 * - Sensitivity: the bare server with a known 20 µs of busy work per request, side by side with
 *   itself without it: the ratio must move by what the extra cost predicts.
 */
import { fileURLToPath } from 'node:url';
import { BENCH_GROUPS, ensureBinaries } from '../hack/local-cluster/binaries.ts';
import { cacheKey } from '../proxy/cache/keys.ts';
import { startCluster, type TestCluster } from '../test/helpers/redis.ts';
import {
  benchProxyEnv,
  type FixedRateResult,
  fixedRate,
  measure,
  pinServer,
  type Result,
  type Server,
  sideBySide,
  startServer,
  type Trace,
  waitForL2,
  writeTrace,
  zipf,
} from './lib.ts';
import { nginxPath, startNginxCache } from './nginx.ts';
import { seeded } from './servers/movie-body.ts';

const URLS = Number(process.env.BENCH_URLS ?? 20_000);
const ZIPF_S = Number(process.env.BENCH_ZIPF ?? 0.99);
const TRACE_LENGTH = 1_000_000;
const EXTRA_US = 20;
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

/** Ranks to ids through a fixed shuffle, so the popular movies are spread over the id space. */
export function zipfTrace(): Trace {
  const random = seeded(42);
  const ids = Array.from({ length: URLS }, (_, i) => i + 1);
  for (let i = ids.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  const pick = zipf(URLS, ZIPF_S, random);
  return writeTrace(Array.from({ length: TRACE_LENGTH }, () => `/3/movie/${ids[pick()]}`));
}

/**
 * Requests every URL once (32 at a time), so each cache holds them all before measuring; with no
 * compression asked for, as the load generators ask (nginx here compresses nothing either).
 */
export async function warm(server: Server): Promise<void> {
  let next = 1;
  const worker = async () => {
    while (next <= URLS) {
      const id = next++;
      const res = await fetch(`${server.url}/3/movie/${id}`, {
        headers: { 'accept-encoding': 'identity' },
      });
      await res.arrayBuffer();
      if (res.status !== 200) throw new Error(`${server.url}/3/movie/${id} answered ${res.status}`);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

/**
 * What L2 holds for the movies, by Redis's own account (MEMORY USAGE of every 20th id): as
 * tiercache stores them (TC3, deflated where it pays) and as the bare server does (as is).
 */
async function l2Memory(cluster: TestCluster): Promise<string> {
  let ours = 0;
  let bare = 0;
  let sampled = 0;
  const clients = new Map(cluster.nodes.map((n) => [n, n.client()]));
  const usage = async (key: string) =>
    Number(await clients.get(await cluster.masterOf(key))!.call('MEMORY', 'USAGE', key));
  for (let id = 1; id <= URLS; id += 20) {
    const path = `/3/movie/${id}`;
    ours += await usage(cacheKey('tmdb', path));
    bare += await usage(`bare:${path}`);
    sampled += 1;
  }
  for (const c of clients.values()) c.disconnect();
  const mb = (bytes: number) => ((bytes * (URLS / sampled)) / 1e6).toFixed(1);
  return `L2 memory for the ${URLS} movies (MEMORY USAGE of ${sampled} sampled keys, scaled): tiercache ${mb(ours)} MB, bare server (bodies as is) ${mb(bare)} MB — ${(100 * (1 - ours / bare)).toFixed(0)} % saved`;
}

/** Requests tiercache answered from L1 and from L2 so far (its /metrics). */
async function tierHits(proxy: Server): Promise<{ l1: number; l2: number }> {
  const text = await (await fetch(`${proxy.url}/metrics`)).text();
  const sum = (tier: string) =>
    text
      .split('\n')
      .filter((l) => l.startsWith('tiercache_cache_hits_total{') && l.includes(`tier="${tier}"`))
      .reduce((a, l) => a + Number(l.split(' ').at(-1)), 0);
  return { l1: sum('l1'), l2: sum('l2') };
}

export interface ProductionReport {
  header: string;
  alone: (Result & { vs?: string })[];
  side: string[];
  latency: (FixedRateResult & { vs?: string })[];
  notes: string[];
}

export async function productionRun(opts: {
  seconds: number;
  sideRounds: number;
  rates: number[];
}): Promise<ProductionReport> {
  const { seconds, sideRounds, rates } = opts;
  const nginx = nginxPath();
  if (!nginx)
    throw new Error(
      'the production run compares with nginx proxy_cache: install nginx (apt-get install nginx), or run BENCH_PART=hot',
    );
  const { vegeta } = ensureBinaries(BENCH_GROUPS) as { vegeta: string };
  const cluster = await startCluster(3);
  const servers: Server[] = [];
  const track = (s: Server) => {
    servers.push(s);
    return s;
  };
  try {
    const upstream = track(await startServer([here('servers/upstream-movies.ts')]));
    const proxy = track(
      await startServer(
        [here('../bin/tiercache.ts'), 'proxy'],
        benchProxyEnv(upstream.url, { REDIS_CLUSTER_NODES: cluster.spec }),
      ),
    );
    const bare = track(
      await startServer([here('servers/bare-two-tier.ts'), upstream.url, cluster.spec]),
    );
    const bareSlow = track(
      await startServer([
        here('servers/bare-two-tier.ts'),
        upstream.url,
        cluster.spec,
        String(EXTRA_US),
      ]),
    );
    const cache = track(await startNginxCache(nginx, upstream.url, { maxSize: '1g' }));
    const measured = [proxy, bare, bareSlow, cache];
    for (const s of measured) pinServer(s);
    await waitForL2([proxy]);
    for (const s of measured) await warm(s);
    const memory = await l2Memory(cluster);

    const trace = zipfTrace();
    const names = new Map<Server, string>([
      [proxy, 'tiercache (L1 64 MiB + L2)'],
      [bare, 'bare fastify two-tier'],
      [bareSlow, `bare two-tier + ${EXTRA_US} µs`],
      [cache, 'nginx proxy_cache'],
    ]);
    const run = (s: Server) => measure(names.get(s)!, s, '', seconds, { trace });
    // Warm-up: V8 optimises the Node servers' paths, L1 settles into the trace's working set.
    for (const s of measured) await run(s);

    const before = await tierHits(proxy);
    const alone: (Result & { vs?: string })[] = [];
    for (const s of [cache, bare, proxy]) alone.push(await run(s));
    const after = await tierHits(proxy);
    const [ng, bareAlone, ours] = alone as [Result, Result, Result];
    alone[1] = { ...bareAlone, vs: `${(bareAlone.rps / ng.rps).toFixed(2)}× nginx req/s` };
    alone[2] = {
      ...ours,
      vs: `${(ours.rps / ng.rps).toFixed(2)}× nginx, ${(ours.rps / bareAlone.rps).toFixed(2)}× bare req/s; CPU per request ${(ng.cpuUs / ours.cpuUs).toFixed(2)}× nginx's, ${(bareAlone.cpuUs / ours.cpuUs).toFixed(2)}× bare's`,
    };

    const side: string[] = [];
    const pairs: [Server, Server, string][] = [
      [proxy, cache, 'target ≥ 1.0'],
      [proxy, bare, 'target ≥ 0.95'],
      [
        bareSlow,
        bare,
        `sensitivity: ${EXTRA_US} µs more per request predicts ${(bareAlone.cpuUs / (bareAlone.cpuUs + EXTRA_US)).toFixed(2)}`,
      ],
    ];
    for (const [a, b, target] of pairs) {
      const r = await sideBySide(
        () => run(a),
        () => run(b),
        sideRounds,
      );
      side.push(
        `${names.get(a)} / ${names.get(b)}: ${r.ratio.toFixed(2)}× req/s (${target}; rounds ${r.rounds})`,
      );
    }

    const latency: (FixedRateResult & { vs?: string })[] = [];
    for (const rate of rates) {
      const ngRate = await fixedRate(names.get(cache)!, cache, trace, rate, seconds, vegeta);
      const bareRate = await fixedRate(names.get(bare)!, bare, trace, rate, seconds, vegeta);
      const ourRate = await fixedRate(names.get(proxy)!, proxy, trace, rate, seconds, vegeta);
      latency.push(
        ngRate,
        { ...bareRate, vs: `p99 ${(bareRate.p99 / ngRate.p99).toFixed(2)}× nginx's` },
        {
          ...ourRate,
          vs: `p99 ${(ourRate.p99 / ngRate.p99).toFixed(2)}× nginx's (target ≤ 1.5), ${(ourRate.p99 / bareRate.p99).toFixed(2)}× bare's`,
        },
      );
    }

    const l1 = after.l1 - before.l1;
    const l2 = after.l2 - before.l2;
    return {
      header: `production run: Zipf(${ZIPF_S}) trace of ${TRACE_LENGTH} requests over ${URLS} movie URLs (~3.8 KB each, 2.7× compressible), every URL warmed; 3-master Redis Cluster; node ${process.version}`,
      alone,
      side,
      latency,
      notes: [
        memory,
        `tiercache answered ${((100 * l1) / Math.max(1, l1 + l2)).toFixed(1)} % of the measured closed-loop requests from L1, ${((100 * l2) / Math.max(1, l1 + l2)).toFixed(1)} % from L2`,
      ],
    };
  } finally {
    await Promise.all(servers.map((s) => s.stop()));
    await cluster.stop();
  }
}
