/**
 * The shield tier (SHIELD_URL): a far region's proxy with no API key of its own asks the home
 * region's proxy before the upstream, as CDNs do. Each key is then fetched from the upstream
 * once, whichever region asks first; the shield's copy keeps its age; a shield that cannot
 * answer sends the miss to the origin instead; and two proxies naming each other as shield cost
 * an upstream call, not a loop.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type DemoUpstream, startDemoUpstream } from '../../proxy/upstreams/demo-server.ts';
import { json } from '../helpers/json.ts';
import { freeRedisPort } from '../helpers/ports.ts';
import { type RunningProxy, spawnProxy, startProxy } from '../helpers/proxy.ts';

const API_KEY = '0123456789abcdef0123456789abcdef';

let upstream: DemoUpstream;
const running: { close(): Promise<void> }[] = [];
beforeAll(async () => {
  upstream = await startDemoUpstream({ apiKey: API_KEY });
});
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.close()));
  upstream.reset();
});
afterAll(() => upstream?.close());

async function proxy(env: Record<string, string>): Promise<RunningProxy> {
  const p = await startProxy({
    TMDB_API_URL: upstream.url,
    CRYPTO_API_URL: `${upstream.url}/api/v3`,
    ...env,
  });
  running.push(p);
  return p;
}

/** The home region's proxy (with the API keys), and a far one that has only its shield. */
async function homeAndEdge() {
  const home = await proxy({ REGION: 'us-east-1', TMDB_API_KEY: API_KEY, CRYPTO_API_KEY: API_KEY });
  const edge = await proxy({ REGION: 'ap-southeast-1', SHIELD_URL: home.url });
  return { home, edge };
}

const movieCalls = () =>
  Object.entries(upstream.stats.byPath)
    .filter(([path]) => path.startsWith('/3/movie/'))
    .reduce((n, [, count]) => n + count, 0);

async function shieldCounts(p: RunningProxy): Promise<Record<string, number>> {
  const text = await (await fetch(`${p.url}/metrics`)).text();
  return Object.fromEntries(
    [...text.matchAll(/^tiercache_shield_requests_total\{result="(\w+)"[^}]*\} (\d+)/gm)].map(
      (m) => [m[1]!, Number(m[2])],
    ),
  );
}

describe('the shield tier', () => {
  it('fetches each of 1 000 URLs from the upstream once, whichever region asks first', async () => {
    const { home, edge } = await homeAndEdge();
    const ids = Array.from({ length: 1000 }, (_, i) => i + 1);
    const get = (p: RunningProxy, id: number) => fetch(`${p.url}/3/movie/${id}`);
    // Half are asked in the far region first, half at home first; then each in the other.
    for (let i = 0; i < ids.length; i += 100) {
      const batch = ids.slice(i, i + 100);
      const firstAt = (id: number) => (id % 2 ? edge : home);
      const otherAt = (id: number) => (id % 2 ? home : edge);
      const first = await Promise.all(batch.map((id) => get(firstAt(id), id)));
      for (const res of first) {
        expect(res.status).toBe(200);
        expect(res.headers.get('x-cache')).toBe('MISS');
        await res.arrayBuffer();
      }
      const again = await Promise.all(batch.map((id) => get(otherAt(id), id)));
      for (const [j, res] of again.entries()) {
        const id = batch[j]!;
        expect(res.status, `movie ${id}`).toBe(200);
        // At home the far region's miss is an L1 hit; in the far region the home one comes
        // through the shield, answered from its cache.
        if (otherAt(id) === home) expect(res.headers.get('x-cache')).toBe('L1');
        else expect(res.headers.get('cache-status')).toMatch(/fwd=uri-miss.*detail=shield/);
        expect((await json(res)).id).toBe(id);
      }
    }
    expect(movieCalls()).toBe(1000);
    // Every far-region miss went to the shield: 500 it had to fetch, 500 it had already.
    expect(await shieldCounts(edge)).toMatchObject({ miss: 500, hit: 500 });
    // The far region has no key, and none reached the shield from it.
    expect(upstream.stats.rejected).toBe(0);
  });

  it('passes images through byte for byte, and crypto routes on its CoinGecko API', async () => {
    const { home, edge } = await homeAndEdge();
    const image = await fetch(`${edge.url}/t/p/w500/poster.jpg`);
    expect(image.status).toBe(200);
    const direct = await fetch(`${upstream.url}/t/p/w500/poster.jpg`);
    expect(Buffer.from(await image.arrayBuffer())).toEqual(Buffer.from(await direct.arrayBuffer()));
    const priceOf = async (p: RunningProxy) => {
      const body = await json(fetch(`${p.url}/api/latest_prices?symbols=BTC,ETH`));
      return Object.fromEntries(
        Object.entries(body.prices as Record<string, { price: number }>).map(([s, v]) => [
          s,
          v.price,
        ]),
      );
    };
    const far = await priceOf(edge);
    expect(Object.keys(far)).toEqual(['BTC', 'ETH']);
    expect(await priceOf(home)).toEqual(far);
    // The far region's batch went to the shield's CoinGecko API, which keeps it apart from the
    // shield's own /api/latest_prices: one upstream call each, not one per region.
    expect(upstream.stats.byPath['/api/v3/simple/price']).toBe(2);
    expect(upstream.stats.rejected).toBe(0);
  });

  it('asks the origin when the shield cannot answer: down, or failing with a 5xx', async () => {
    const home = await proxy({ REGION: 'us-east-1', TMDB_API_KEY: API_KEY });
    const edge = await proxy({
      REGION: 'ap-southeast-1',
      SHIELD_URL: home.url,
      TMDB_API_KEY: API_KEY,
      UPSTREAM_TIMEOUT: '2',
    });
    // The shield's own upstream fails and it has no copy: its 502 sends the edge to the origin,
    // which fails too — and then answers once it is back.
    upstream.control.failStatus = 503;
    expect((await fetch(`${edge.url}/3/movie/7`)).status).toBe(503);
    upstream.control.failStatus = undefined;
    await home.close();
    const res = await fetch(`${edge.url}/3/movie/8`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-status')).not.toMatch(/detail=shield/);
    expect((await json(res)).id).toBe(8);
    expect(await shieldCounts(edge)).toMatchObject({ fallback: 2 });
    expect(upstream.stats.byPath['/3/movie/8']).toBe(1);
  });

  it('two proxies naming each other as shield make one upstream call for a miss, not a loop', async () => {
    const [portA, portB] = [await freeRedisPort(), await freeRedisPort()];
    const env = { TMDB_API_URL: upstream.url, TMDB_API_KEY: API_KEY };
    const [a, b] = await Promise.all([
      spawnProxy({ ...env, PORT: String(portA), SHIELD_URL: `http://127.0.0.1:${portB}` }),
      spawnProxy({ ...env, PORT: String(portB), SHIELD_URL: `http://127.0.0.1:${portA}` }),
    ]);
    running.push({ close: () => a.stop() }, { close: () => b.stop() });
    const res = await fetch(`${a.url}/3/movie/9`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-status')).toMatch(/detail=shield/);
    expect(upstream.stats.byPath['/3/movie/9']).toBe(1);
    expect((await fetch(`${b.url}/3/movie/9`)).headers.get('x-cache')).toBe('L1');
  });

  it('refuses a SHIELD_URL that is not an http(s) URL, naming the variable', async () => {
    await expect(proxy({ SHIELD_URL: 'home-proxy:6635' })).rejects.toThrow(/SHIELD_URL/);
  });
});
