/**
 * Two `tiercache proxy` processes, as two regional replicas, sharing one 3-master Redis
 * Cluster: each serves the other's entries from L2, and a burst of concurrent misses for one
 * cold URL spread over both reaches the upstream once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DemoUpstream, startDemoUpstream } from '../../proxy/upstreams/demo-server.ts';
import { json } from '../helpers/json.ts';
import { type ProxyProcess, spawnProxy } from '../helpers/proxy.ts';
import { startCluster, type TestCluster } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

const API_KEY = '0123456789abcdef0123456789abcdef';

let upstream: DemoUpstream;
let cluster: TestCluster;
let apac: ProxyProcess;
let eu: ProxyProcess;

beforeAll(async () => {
  [upstream, cluster] = await Promise.all([
    startDemoUpstream({ apiKey: API_KEY }),
    startCluster(3),
  ]);
  const env = {
    TMDB_API_URL: upstream.url,
    TMDB_API_KEY: API_KEY,
    REDIS_CLUSTER_NODES: cluster.spec,
    LOG_LEVEL: 'debug',
  };
  [apac, eu] = await Promise.all([
    spawnProxy({ ...env, REGION: 'ap-southeast-1' }),
    spawnProxy({ ...env, REGION: 'eu-west-1' }),
  ]);
  // Both replicas have L2 once /ready reports it.
  for (const p of [apac, eu]) {
    await waitFor(`L2 on ${p.url}`, async () => (await json(fetch(`${p.url}/ready`))).l2 === 'ok');
  }
});
afterAll(async () => {
  await Promise.all([apac?.stop(), eu?.stop()]);
  await Promise.all([upstream?.close(), cluster?.stop()]);
});

describe('regional replicas sharing L2', () => {
  it("serve each other's entries from L2", async () => {
    expect((await fetch(`${apac.url}/3/movie/500`)).headers.get('x-cache')).toBe('MISS');
    expect((await fetch(`${eu.url}/3/movie/500`)).headers.get('x-cache')).toBe('L2');
    expect((await fetch(`${eu.url}/3/movie/501`)).headers.get('x-cache')).toBe('MISS');
    expect((await fetch(`${apac.url}/3/movie/501`)).headers.get('x-cache')).toBe('L2');
    expect(upstream.stats.byPath['/3/movie/500']).toBe(1);
    expect(upstream.stats.byPath['/3/movie/501']).toBe(1);
  });

  it('make one upstream call for 200 concurrent requests of one cold URL across both', async () => {
    upstream.control.delayMs = 300;
    try {
      const responses = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          fetch(`${(i % 2 ? apac : eu).url}/3/movie/777?language=en-US`),
        ),
      );
      expect(responses.map((r) => r.status)).toEqual(Array(200).fill(200));
      const bodies = new Set(await Promise.all(responses.map((r) => r.text())));
      expect(bodies.size).toBe(1);
      expect(upstream.stats.byPath['/3/movie/777']).toBe(1);
      const sources = new Set(responses.map((r) => r.headers.get('x-cache')));
      expect([...sources].every((s) => s === 'MISS' || s === 'L2')).toBe(true);
    } finally {
      upstream.control.delayMs = 0;
    }
  });

  it('never write the API key to their logs', async () => {
    await fetch(`${apac.url}/3/movie/502?api_key=${API_KEY}`);
    await fetch(`${eu.url}/3/movie/9999999`); // an upstream error path logs the URL
    for (const p of [apac, eu]) {
      expect(p.output().length).toBeGreaterThan(0);
      expect(p.output()).not.toContain(API_KEY);
    }
  });
});
