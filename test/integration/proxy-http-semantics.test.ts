/**
 * HTTP as browsers and API clients expect it, on the routes that write to the socket directly
 * and on the fastify-sent ones: strong ETags and 304s, br/gzip by Accept-Encoding with Vary,
 * HEAD, and CORS for the data routes only (the test that @fastify/cors's headers reach the
 * raw-written answers).
 */
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { json } from '../helpers/json.ts';
import { useRedisFixture } from '../helpers/l2-fixture.ts';
import { type RunningProxy, rawRequest, startProxy } from '../helpers/proxy.ts';
import { waitFor } from '../helpers/wait.ts';

const ADMIN = 'http-admin';
const MOVIE = '/3/movie/550';
const fx = useRedisFixture();

async function proxy(env: Record<string, string> = {}): Promise<RunningProxy> {
  const p = await startProxy({
    TMDB_API_URL: fx.upstream.url,
    CRYPTO_API_URL: `${fx.upstream.url}/api/v3`,
    ADMIN_TOKEN: ADMIN,
    ...env,
  });
  fx.proxies.push(p);
  return p;
}

describe('ETag and If-None-Match', () => {
  it('tags an answer by its bytes, the same on every replica, and answers a match with a bodiless 304', async () => {
    const spec = `${fx.standalone.host}:${fx.standalone.port}`;
    const a = await proxy({ REDIS_CLUSTER_NODES: spec });
    const b = await proxy({ REDIS_CLUSTER_NODES: spec });
    for (const p of [a, b])
      await waitFor('L2', async () => (await json(fetch(`${p.url}/ready`))).l2 === 'ok');
    const miss = await rawRequest(a.url, MOVIE);
    expect(miss.headers['x-cache']).toBe('MISS');
    const etag = miss.headers.etag as string;
    expect(etag).toMatch(/^"[\w-]{22}"$/);

    const fromL2 = await rawRequest(b.url, MOVIE);
    expect(fromL2.headers['x-cache']).toBe('L2');
    expect(fromL2.headers.etag).toBe(etag);

    for (const p of [a, b]) {
      const notModified = await rawRequest(p.url, MOVIE, { headers: { 'if-none-match': etag } });
      expect(notModified.status).toBe(304);
      expect(notModified.body.length).toBe(0);
      expect(notModified.headers.etag).toBe(etag);
      expect(notModified.headers['cache-control']).toMatch(/max-age=/);
      expect(notModified.headers['x-cache']).toBe('L1');
    }
    const listed = await rawRequest(a.url, MOVIE, {
      headers: { 'if-none-match': `"other", ${etag}` },
    });
    expect(listed.status).toBe(304);
    const changed = await rawRequest(a.url, MOVIE, { headers: { 'if-none-match': '"other"' } });
    expect(changed.status).toBe(200);
    expect(changed.body.equals(miss.body)).toBe(true);
    expect(fx.upstream.stats.byPath[MOVIE]).toBe(1);
  });

  it('gives a changed answer a new tag', async () => {
    const p = await proxy({ JSON_MEMORY_TTL: '0.002' }); // 120 ms
    fx.upstream.control.revision = 1;
    const first = await rawRequest(p.url, MOVIE);
    await new Promise((r) => setTimeout(r, 150)); // let it expire (a TTL, not a wait for a condition)
    fx.upstream.control.revision = 2;
    // The first request after expiry is served stale while it refreshes; wait for the new one.
    await waitFor('refreshed', async () => {
      const res = await rawRequest(p.url, MOVIE);
      return res.headers['x-cache'] !== 'STALE' && JSON.parse(res.body.toString()).revision === 2;
    });
    const second = await rawRequest(p.url, MOVIE, {
      headers: { 'if-none-match': first.headers.etag as string },
    });
    expect(second.status).toBe(200);
    expect(second.headers.etag).not.toBe(first.headers.etag);
  });
});

describe('compression by Accept-Encoding', () => {
  it('sends br or gzip as the client prefers, each its own tag, with Vary; identity when none is accepted', async () => {
    const p = await proxy();
    const plain = await rawRequest(p.url, MOVIE);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.headers.vary).toBe('accept-encoding');
    const identity = plain.body;
    expect(identity.length).toBeGreaterThan(1024);

    const br = await rawRequest(p.url, MOVIE, { headers: { 'accept-encoding': 'gzip, br' } });
    expect(br.headers['content-encoding']).toBe('br');
    expect(Number(br.headers['content-length'])).toBe(br.body.length);
    expect(br.body.length).toBeLessThan(identity.length / 2);
    expect(brotliDecompressSync(br.body).equals(identity)).toBe(true);

    const gz = await rawRequest(p.url, MOVIE, {
      headers: { 'accept-encoding': 'gzip;q=1, br;q=0' },
    });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.body).equals(identity)).toBe(true);
    expect(new Set([plain.headers.etag, br.headers.etag, gz.headers.etag]).size).toBe(3);

    // A 304 for the compressed representation's tag, asked with the same encoding.
    const again = await rawRequest(p.url, MOVIE, {
      headers: { 'accept-encoding': 'br', 'if-none-match': br.headers.etag as string },
    });
    expect(again.status).toBe(304);
    expect(fx.upstream.stats.byPath[MOVIE]).toBe(1);
  });

  it('leaves images as stored', async () => {
    const p = await proxy();
    const path = '/t/p/w500/demo-poster-550.jpg';
    const headers = { 'accept-encoding': 'br, gzip' };
    // A miss streams as it arrives, before its bytes (and so its tag) are known; the hit has one.
    const miss = await rawRequest(p.url, path, { headers });
    expect(miss.status).toBe(200);
    expect(miss.headers['x-cache']).toBe('MISS');
    expect(miss.headers['content-encoding']).toBeUndefined();
    expect(miss.headers.etag).toBeUndefined();
    const hit = await rawRequest(p.url, path, { headers });
    expect(hit.headers['x-cache']).toBe('L1');
    expect(hit.headers['content-encoding']).toBeUndefined();
    expect(hit.headers.etag).toBeDefined();
    expect(hit.body.equals(miss.body)).toBe(true);
  });
});

describe('HEAD', () => {
  it('answers with the GET headers and no body, on a miss and on a hit', async () => {
    const p = await proxy();
    const miss = await rawRequest(p.url, MOVIE, { method: 'HEAD' });
    expect(miss.status).toBe(200);
    expect(miss.body.length).toBe(0);
    expect(miss.headers['x-cache']).toBe('MISS');
    const get = await rawRequest(p.url, MOVIE);
    const hit = await rawRequest(p.url, MOVIE, { method: 'HEAD' });
    expect(hit.headers['x-cache']).toBe('L1');
    expect(hit.body.length).toBe(0);
    expect(hit.headers['content-length']).toBe(String(get.body.length));
    expect(hit.headers.etag).toBe(get.headers.etag);
    const prices = await rawRequest(p.url, '/api/latest_prices?symbols=DOGE', { method: 'HEAD' });
    expect(prices.status).toBe(200);
    expect(prices.body.length).toBe(0);
  });
});

describe('CORS', () => {
  const ORIGIN = 'https://app.example.com';

  it('lets any origin read the data routes by default, raw-written ones included; admin routes never', async () => {
    const p = await proxy();
    for (const path of [MOVIE, MOVIE, '/api/latest_prices?symbols=BTC']) {
      const res = await rawRequest(p.url, path, { headers: { origin: ORIGIN } });
      expect(res.status).toBe(200);
      expect(res.headers['access-control-allow-origin']).toBe('*');
      expect(res.headers['access-control-expose-headers']).toContain('x-cache');
    }
    // Error answers of data routes too, so a browser script can read why its request failed.
    for (const [path, status] of [
      ['/api/latest_prices', 400],
      ['/api/no-such-route', 404],
    ] as const) {
      const res = await rawRequest(p.url, path, { headers: { origin: ORIGIN } });
      expect(res.status).toBe(status);
      expect(res.headers['access-control-allow-origin']).toBe('*');
    }
    const preflight = await rawRequest(p.url, MOVIE, {
      method: 'OPTIONS',
      headers: { origin: ORIGIN, 'access-control-request-method': 'GET' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe('*');
    expect(preflight.headers['access-control-allow-methods']).toBe('GET, HEAD');

    for (const path of ['/cache/keys', '/api/cache/stats', '/config']) {
      const res = await rawRequest(p.url, path, {
        headers: { origin: ORIGIN, authorization: `Bearer ${ADMIN}` },
      });
      expect(res.status).toBe(200);
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
      const pre = await rawRequest(p.url, path, {
        method: 'OPTIONS',
        headers: { origin: ORIGIN, 'access-control-request-method': 'GET' },
      });
      expect(pre.headers['access-control-allow-origin']).toBeUndefined();
    }
  });

  it('allows only the listed origins, or none', async () => {
    const listed = await proxy({ CORS_ORIGINS: `${ORIGIN},http://localhost:3000` });
    const ok = await rawRequest(listed.url, MOVIE, { headers: { origin: ORIGIN } });
    expect(ok.headers['access-control-allow-origin']).toBe(ORIGIN);
    expect(ok.headers.vary).toContain('accept-encoding');
    expect(String(ok.headers.vary).toLowerCase()).toContain('origin');
    const other = await rawRequest(listed.url, MOVIE, { headers: { origin: 'https://evil.test' } });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();

    const none = await proxy({ CORS_ORIGINS: 'none' });
    const closed = await rawRequest(none.url, MOVIE, { headers: { origin: ORIGIN } });
    expect(closed.status).toBe(200);
    expect(closed.headers['access-control-allow-origin']).toBeUndefined();

    await expect(proxy({ CORS_ORIGINS: 'app.example.com' })).rejects.toThrow(
      /CORS_ORIGINS.*allowed: \*, none, or comma-separated origins/,
    );
  });
});
