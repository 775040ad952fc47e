/**
 * L2 trouble never breaks the proxy: Redis killed or hung under load gives no 5xx, the
 * fallback nodes take over, and everything returns to normal by itself when Redis is back.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type DemoUpstream, startDemoUpstream } from '../../proxy/upstreams/demo-server.ts';
import { json } from '../helpers/json.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { type RedisNode, startRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

let upstream: DemoUpstream;
const cleanups: (() => Promise<void>)[] = [];

// L1 off for JSON so every request really goes through L2; short timeouts and cooldown.
const FAST_FAILURE = {
  JSON_MEMORY_TTL: '0',
  REDIS_READ_TIMEOUT: '0.2',
  REDIS_WRITE_TIMEOUT: '0.2',
  REDIS_CONNECT_TIMEOUT: '0.5',
  REDIS_BREAKER_FAILURES: '3',
  REDIS_BREAKER_COOLDOWN: '0.3',
};

async function proxyOn(nodes: string, env: Record<string, string> = {}): Promise<RunningProxy> {
  const p = await startProxy({
    TMDB_API_URL: upstream.url,
    REDIS_CLUSTER_NODES: nodes,
    ...FAST_FAILURE,
    ...env,
  });
  cleanups.push(() => p.close());
  await waitFor('L2 to connect', async () => (await json(fetch(`${p.url}/ready`))).l2 === 'ok');
  return p;
}

async function redis(): Promise<RedisNode> {
  const node = await startRedis();
  cleanups.push(() => node.stop());
  return node;
}

const spec = (n: RedisNode) => `${n.host}:${n.port}`;

/** Keeps `workers` clients requesting random movies until stopped; counts every status. */
function load(url: string, workers = 8) {
  const statuses = new Map<number, number>();
  let running = true;
  let errors = 0;
  const loops = Array.from({ length: workers }, async () => {
    while (running) {
      try {
        const res = await fetch(`${url}/3/movie/${1 + Math.floor(Math.random() * 200)}`);
        await res.arrayBuffer();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      } catch {
        errors += 1;
      }
    }
  });
  return {
    count: () => [...statuses.values()].reduce((a, b) => a + b, 0),
    async stop() {
      running = false;
      await Promise.all(loops);
      return { statuses: Object.fromEntries(statuses), errors };
    },
  };
}

/** True once a new key written through `p` lands in `node` and is read back from L2. */
async function l2Works(p: RunningProxy, node: RedisNode, id: number): Promise<boolean> {
  await fetch(`${p.url}/3/movie/${id}`);
  const res = await fetch(`${p.url}/3/movie/${id}`);
  return (
    res.headers.get('x-cache') === 'L2' &&
    (await node.client().exists(`tc:tmdb:/3/movie/${id}`)) === 1
  );
}

beforeAll(async () => {
  upstream = await startDemoUpstream();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});
afterAll(async () => {
  await upstream.close();
});

describe('when Redis fails under load', () => {
  it('a killed Redis gives zero 5xx, and the proxy recovers by itself when Redis returns', async () => {
    const node = await redis();
    const p = await proxyOn(spec(node));
    const traffic = load(p.url);
    await waitFor('traffic through L2', () => traffic.count() > 200);

    await node.kill();
    const atKill = traffic.count();
    await waitFor(
      'the breaker to open',
      () => p.proxy.cache.l2!.targets[0]!.breaker.state !== 'closed',
    );
    await waitFor('traffic while Redis is down', () => traffic.count() > atKill + 300);

    await node.restart();
    let id = 10_000;
    await waitFor('L2 to work again', () => l2Works(p, node, id++), 15_000);
    const { statuses, errors } = await traffic.stop();

    expect(errors).toBe(0);
    expect(Object.keys(statuses)).toEqual(['200']);
    expect(statuses[200]).toBeGreaterThan(500);
    const metrics = await (await fetch(`${p.url}/metrics`)).text();
    expect(metrics).toMatch(
      /tiercache_l2_errors_total\{target="main",op="get",region="local"\} [1-9]/,
    );
    expect(p.proxy.cache.l2!.targets[0]!.breaker.state).toBe('closed');
  });

  it('a hung Redis (SIGSTOP) is bounded by the timeouts: every request still answers 200', async () => {
    const node = await redis();
    const p = await proxyOn(spec(node));
    node.pause();
    try {
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => fetch(`${p.url}/3/movie/${300 + i}`)),
      );
      expect(results.map((r) => r.status)).toEqual(Array(40).fill(200));
      expect(p.proxy.cache.l2!.targets[0]!.breaker.state).toBe('open');
    } finally {
      node.resume();
    }
    let id = 20_000;
    await waitFor('L2 to work again', () => l2Works(p, node, id++), 15_000);
  });

  it('a reply that comes after its timeout is no success: the breaker stays open', async () => {
    const node = await redis();
    const p = await proxyOn(spec(node), {
      REDIS_BREAKER_FAILURES: '1',
      REDIS_BREAKER_COOLDOWN: '60',
    });
    const target = p.proxy.cache.l2!.targets[0]!;
    node.pause();
    try {
      const res = await fetch(`${p.url}/3/movie/77`); // its L2 read times out; upstream answers
      expect(res.status).toBe(200);
      expect(target.breaker.state).toBe('open');
    } finally {
      node.resume();
    }
    // Replies on a connection come in order: once this PING is answered, the late reply to the
    // timed-out read has been handled too.
    await target.masters()[0]!.ping();
    expect(target.breaker.state).toBe('open');
  });

  it('moves to REDIS_FALLBACK_NODES while the main nodes are down, and back when they return', async () => {
    const main = await redis();
    const fallback = await redis();
    const p = await proxyOn(spec(main), { REDIS_FALLBACK_NODES: spec(fallback) });
    await fetch(`${p.url}/3/movie/1`);
    expect(await main.client().exists('tc:tmdb:/3/movie/1')).toBe(1);

    await main.kill();
    let id = 30_000;
    await waitFor('entries to go to the fallback', () => l2Works(p, fallback, id++), 15_000);
    expect((await json(fetch(`${p.url}/status`))).l2).toBe('fallback');

    await main.restart();
    await waitFor('entries to go to the main nodes again', () => l2Works(p, main, id++), 15_000);
    expect((await json(fetch(`${p.url}/status`))).l2).toBe('ok');
  });

  it('starts and serves when no Redis is reachable at all, and picks L2 up once it appears', async () => {
    const node = await redis();
    await node.kill();
    const p = await startProxy({
      TMDB_API_URL: upstream.url,
      REDIS_CLUSTER_NODES: spec(node),
      ...FAST_FAILURE,
    });
    cleanups.push(() => p.close());
    const res = await fetch(`${p.url}/3/movie/2`);
    expect(res.status).toBe(200);
    expect((await json(fetch(`${p.url}/ready`))).status).toBe('ready');
    await node.restart();
    let id = 40_000;
    await waitFor('L2 to be picked up', () => l2Works(p, node, id++), 15_000);
  });
});

describe('a slow L2 on the hot path', () => {
  it('is waited for only until the soft deadline: L1’s copy or the upstream answers while Redis hangs', async () => {
    const node = await redis();
    // Hard timeouts far longer than the test may take: only the soft deadline can answer in time.
    const p = await proxyOn(spec(node), {
      JSON_MEMORY_TTL: '0.001', // 60 ms in L1, then L1 asks L2 again
      REDIS_READ_TIMEOUT: '60',
      REDIS_WRITE_TIMEOUT: '60',
      L2_SOFT_TIMEOUT_MS: '50',
      COALESCE_LEASE: '60',
    });
    const first = await fetch(`${p.url}/3/movie/60001`);
    expect(first.headers.get('x-cache')).toBe('MISS');
    await waitFor(
      'the entry in L2',
      async () => (await node.client().exists('tc:tmdb:/3/movie/60001')) === 1,
    );
    await waitFor('L1 to ask L2 again', async () => {
      const r = await fetch(`${p.url}/3/movie/60001`);
      await r.arrayBuffer();
      return r.headers.get('x-cache') === 'L2';
    });
    const key = 'tc:tmdb:/3/movie/60001';
    await waitFor('L1’s copy to pass its L1 TTL', () => {
      const item = p.proxy.cache.l1.get(key, 'default', Date.now());
      return item !== undefined && Date.now() >= item.freshUntil;
    });
    node.pause();
    try {
      // L1's copy is past its L1 TTL but within the answer's lifetime: served from it.
      const kept = await fetch(`${p.url}/3/movie/60001`);
      expect(kept.status).toBe(200);
      expect(kept.headers.get('x-cache')).toBe('L1');
      // Nothing in L1: the upstream answers, without waiting for Redis to take a lease.
      const fresh = await fetch(`${p.url}/3/movie/60002`);
      expect(fresh.status).toBe(200);
      expect(fresh.headers.get('x-cache')).toBe('MISS');
      expect(upstream.stats.byPath['/3/movie/60001']).toBe(1);
      const metrics = await (await fetch(`${p.url}/metrics`)).text();
      expect(metrics).toMatch(/tiercache_l2_slow_reads_total\{[^}]*target="main"[^}]*\} [2-9]/);
    } finally {
      node.resume();
    }
    // The late look for movie 2 took its lease after the request had gone on: let go at once,
    // not held for COALESCE_LEASE (60 s), so other replicas do not wait on it.
    const lease = 'tc-lease:{tc:tmdb:/3/movie/60002}';
    await waitFor('the late lease to be let go', async () => {
      await p.proxy.cache.l2!.targets[0]!.masters()[0]!.ping(); // late replies handled first
      return (await node.client().exists(lease)) === 0;
    });
    expect(p.proxy.cache.l2!.targets[0]!.breaker.state).toBe('closed');
  });
});

describe('Redis refusing writes', () => {
  it('OOM on writes does not open the breaker: reads keep coming from L2, misses still answer', async () => {
    const node = await redis();
    const p = await proxyOn(spec(node), { REDIS_BREAKER_FAILURES: '2' });
    const stored = await fetch(`${p.url}/3/movie/61001`);
    expect(stored.headers.get('x-cache')).toBe('MISS');
    await waitFor(
      'the entry in L2',
      async () => (await node.client().exists('tc:tmdb:/3/movie/61001')) === 1,
    );
    // No memory left and no eviction: every write (and every lease) is refused with OOM.
    await node.client().call('CONFIG', 'SET', 'maxmemory-policy', 'noeviction');
    await node.client().call('CONFIG', 'SET', 'maxmemory', '1');
    try {
      for (let i = 0; i < 10; i++) {
        const res = await fetch(`${p.url}/3/movie/${61100 + i}`);
        expect(res.status).toBe(200);
        expect(res.headers.get('x-cache')).toBe('MISS');
      }
      expect(await node.client().exists('tc:tmdb:/3/movie/61100')).toBe(0);
      expect(p.proxy.cache.l2!.targets[0]!.breaker.state).toBe('closed');
      // L1 is off for JSON here, so this is L2 answering.
      const hit = await fetch(`${p.url}/3/movie/61001`);
      expect(hit.headers.get('x-cache')).toBe('L2');
    } finally {
      await node.client().call('CONFIG', 'SET', 'maxmemory', '0');
    }
  });
});
