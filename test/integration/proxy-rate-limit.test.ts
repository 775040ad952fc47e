/**
 * Per-client rate limits on the data routes: counted per route class, shared by replicas
 * through Redis, per replica without it; over the limit a 429 with Retry-After that never
 * reaches the upstream. Probes and admin routes are never limited.
 */
import { describe, expect, it } from 'vitest';
import { json } from '../helpers/json.ts';
import { useL2Fixture } from '../helpers/l2-fixture.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { waitFor } from '../helpers/wait.ts';

const API_KEY = 'f00dfeedf00dfeedf00dfeedf00dfeed';
const fx = useL2Fixture(API_KEY);

async function replica(env: Record<string, string>): Promise<RunningProxy> {
  const p = await startProxy({
    TMDB_API_URL: fx.upstream.url,
    TMDB_API_KEY: API_KEY,
    CRYPTO_API_URL: `${fx.upstream.url}/api/v3`,
    CRYPTO_API_KEY: API_KEY,
    ...env,
  });
  fx.proxies.push(p);
  if (env.REDIS_CLUSTER_NODES === fx.cluster.spec)
    await waitFor('L2', async () => (await json(fetch(`${p.url}/ready`))).l2 === 'ok');
  return p;
}

describe('per-client rate limits', () => {
  it('share one budget across replicas through Redis, per route class', async () => {
    const env = {
      REDIS_CLUSTER_NODES: fx.cluster.spec,
      RATE_LIMIT_TMDB: '5/1m',
      RATE_LIMIT_CRYPTO: '2/1m',
    };
    const [a, b] = [await replica(env), await replica(env)];
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await fetch(`${i % 2 ? b.url : a.url}/3/movie/${500 + i}`);
      statuses.push(res.status);
      if (res.status === 429) {
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
        expect(Number(res.headers.get('retry-after'))).toBeLessThanOrEqual(60);
        expect(await json(res)).toMatchObject({ error: 'RATE_LIMITED' });
      } else {
        // The limiter's headers reach the answers the hit and miss paths write themselves.
        expect(res.headers.get('x-ratelimit-limit')).toBe('5');
        expect(res.headers.get('x-ratelimit-remaining')).toBe(String(4 - i));
        await res.arrayBuffer();
      }
    }
    expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    // The refused request never reached TMDB.
    expect(fx.upstream.stats.byPath['/3/movie/505']).toBeUndefined();
    // Images have no limit; crypto has its own budget, untouched by the TMDB one.
    expect((await fetch(`${a.url}/t/p/w500/poster.jpg`)).status).toBe(200);
    const crypto = [];
    for (let i = 0; i < 3; i++)
      crypto.push((await fetch(`${b.url}/api/latest_prices?symbols=BTC`)).status);
    expect(crypto).toEqual([200, 200, 429]);
    // Probes, metrics and admin routes are never counted.
    for (const path of ['/health', '/ready', '/metrics', '/status'])
      expect((await fetch(`${a.url}${path}`)).status, path).toBe(200);
  });

  it('tells clients apart by X-Forwarded-For only when TRUST_PROXY says so', async () => {
    const spoofed = (url: string, client: string) =>
      fetch(`${url}/3/movie/600`, { headers: { 'x-forwarded-for': client } });
    const open = await replica({ RATE_LIMIT_TMDB: '1/1m', TRUST_PROXY: '1' });
    expect((await spoofed(open.url, '203.0.113.1')).status).toBe(200);
    expect((await spoofed(open.url, '203.0.113.2')).status).toBe(200);
    expect((await spoofed(open.url, '203.0.113.1')).status).toBe(429);

    // Without TRUST_PROXY the header is the client's own word: one budget for the address.
    const closed = await replica({ RATE_LIMIT_TMDB: '1/1m' });
    expect((await spoofed(closed.url, '203.0.113.1')).status).toBe(200);
    expect((await spoofed(closed.url, '203.0.113.2')).status).toBe(429);
  });

  it('counts per replica while Redis cannot answer, instead of failing requests', async () => {
    const p = await replica({ REDIS_CLUSTER_NODES: '127.0.0.1:1', RATE_LIMIT_TMDB: '2/1m' });
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await fetch(`${p.url}/3/movie/${700 + i}`)).status);
    expect(statuses).toEqual([200, 200, 429]);
  });
});
