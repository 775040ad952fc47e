/**
 * The proxy against the fake upstream, L1 only: what a client sees (headers, bodies, status
 * codes), credential handling, TTL rules, stale serving, 429 back-off and coalescing.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/log.ts';
import { buildProxy } from '../../proxy/app.ts';
import { loadProxyConfig } from '../../proxy/config.ts';
import {
  type DemoUpstream,
  demoImage,
  startDemoUpstream,
} from '../../proxy/upstreams/demo-server.ts';
import { json } from '../helpers/json.ts';
import { type RunningProxy, rawGet, rawRequest, runCli, startProxy } from '../helpers/proxy.ts';
import { waitFor } from '../helpers/wait.ts';

const API_KEY = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const ADMIN = 'admin-secret-token';
const admin = { headers: { authorization: `Bearer ${ADMIN}` } };

let upstream: DemoUpstream;
const proxies: RunningProxy[] = [];

async function proxy(env: Record<string, string> = {}): Promise<RunningProxy> {
  const p = await startProxy({
    TMDB_API_URL: upstream.url,
    TMDB_API_KEY: API_KEY,
    ADMIN_TOKEN: ADMIN,
    ...env,
  });
  proxies.push(p);
  return p;
}

/** An image origin whose answers the test writes itself (slowly, or broken off). */
async function slowImageServer(
  answer: (res: ServerResponse) => Promise<void>,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((_req, res) => {
    answer(res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

beforeAll(async () => {
  upstream = await startDemoUpstream({ apiKey: API_KEY });
});
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  upstream.reset();
});
afterAll(async () => {
  await upstream.close();
});

describe('building a proxy', () => {
  it('starts nothing that listens: answers through inject, and wants a demo upstream handed in', async () => {
    const log = createLogger('silent', {});
    const keyless = loadProxyConfig({ CRYPTO_API_URL: `${upstream.url}/api/v3` });
    await expect(buildProxy(keyless, log)).rejects.toThrow(/TMDB_API_KEY: not set, and no demo/);
    const config = loadProxyConfig({
      TMDB_API_URL: upstream.url,
      TMDB_API_KEY: API_KEY,
      CRYPTO_API_URL: `${upstream.url}/api/v3`,
      CRYPTO_API_KEY: API_KEY,
    });
    const p = await buildProxy(config, log);
    try {
      expect(p.app.server.listening).toBe(false);
      const res = await p.app.inject({ method: 'GET', url: '/3/movie/3' });
      expect(res.statusCode).toBe(200);
      expect(res.json().title).toBe('Demo Movie 3');
      expect(p.app.server.listening).toBe(false);
    } finally {
      await p.close();
    }
  });
});

describe('TMDB routes', () => {
  it('answers a miss from upstream, then from L1, saying so in X-Cache, Cache-Status and Age', async () => {
    const p = await proxy();
    const first = await fetch(`${p.url}/3/movie/550?language=en-US`);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-cache')).toBe('MISS');
    expect(first.headers.get('cache-status')).toMatch(
      /^tiercache; fwd=uri-miss; fwd-status=200; stored; ttl=\d+$/,
    );
    expect(first.headers.get('age')).toBe('0');
    const body = await json(first);
    expect(body.title).toBe('Demo Movie 550');

    const second = await fetch(`${p.url}/3/movie/550?language=en-US`);
    expect(second.headers.get('x-cache')).toBe('L1');
    expect(second.headers.get('cache-status')).toMatch(/^tiercache; hit; ttl=\d+; detail=l1$/);
    expect(await json(second)).toEqual(body);
    expect(upstream.stats.byPath['/3/movie/550']).toBe(1);
  });

  it('injects the v3 key server-side and never lets it reach a response, a key or a log line', async () => {
    const p = await proxy();
    const res = await fetch(`${p.url}/3/movie/7?api_key=CLIENT_SENT_THIS`);
    expect(res.status).toBe(200);
    expect(upstream.stats.lastAuth).toBe('query');
    expect(upstream.stats.rejected).toBe(0); // the client's key was dropped, ours was used
    const text = await res.text();
    const keys = await (await fetch(`${p.url}/cache/keys?limit=100`, admin)).text();
    const config = await (await fetch(`${p.url}/config`, admin)).text();
    for (const seen of [text, keys, config, p.logs(), JSON.stringify([...res.headers])]) {
      expect(seen).not.toContain(API_KEY);
      expect(seen).not.toContain('CLIENT_SENT_THIS');
    }
    expect(keys).toContain('tmdb:/3/movie/7');
  });

  it('sends a v4 read token as a Bearer header', async () => {
    const token = 'eyJhbGciOiJIUzI1NiJ9.eyJhdWQiOiJ4In0.c2lnbmF0dXJl';
    const v4 = await startDemoUpstream({ apiKey: token });
    try {
      const p = await proxy({ TMDB_API_URL: v4.url, TMDB_API_KEY: token });
      expect((await fetch(`${p.url}/3/movie/1`)).status).toBe(200);
      expect(v4.stats.lastAuth).toBe('bearer');
    } finally {
      await v4.close();
    }
  });

  it('serves images byte for byte from upstream and from L1', async () => {
    const p = await proxy();
    const expected = demoImage('w500', 'poster.jpg');
    for (const source of ['MISS', 'L1']) {
      const res = await fetch(`${p.url}/t/p/w500/poster.jpg`);
      expect(res.headers.get('x-cache')).toBe(source);
      expect(res.headers.get('content-type')).toBe('image/jpeg');
      expect(Buffer.from(await res.arrayBuffer()).equals(expected)).toBe(true);
    }
  });

  it('caches 404 briefly and never caches 401, 429 or 5xx', async () => {
    const p = await proxy();
    await fetch(`${p.url}/3/movie/9999999`);
    const notFound = await fetch(`${p.url}/3/movie/9999999`);
    expect(notFound.status).toBe(404);
    expect(notFound.headers.get('x-cache')).toBe('L1');

    const wrongKey = await proxy({ TMDB_API_KEY: 'wrong' });
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${wrongKey.url}/3/movie/3`);
      expect(res.status).toBe(401);
      expect(res.headers.get('x-cache')).toBe('MISS');
      expect(res.headers.get('cache-control')).toBe('no-store');
    }
    expect(upstream.stats.byPath['/3/movie/3']).toBe(2);

    upstream.control.failStatus = 503;
    for (let i = 0; i < 2; i++) expect((await fetch(`${p.url}/3/movie/4`)).status).toBe(503);
    expect(upstream.stats.byPath['/3/movie/4']).toBe(2);
  });

  it('backs off after a 429: later requests wait for Retry-After instead of calling upstream', async () => {
    const p = await proxy();
    upstream.control.rateLimitSeconds = 30;
    const first = await fetch(`${p.url}/3/movie/5`);
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('30');
    expect(first.headers.get('x-should-retry')).toBe('false');
    const second = await fetch(`${p.url}/3/movie/6`);
    expect(second.status).toBe(429);
    expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(second.headers.get('x-should-retry')).toBe('false');
    expect((await json(second)).error).toBe('UPSTREAM_RATE_LIMITED');
    expect(upstream.stats.total).toBe(1);
  });

  it('sheds background refreshes first: after a 429 the quota goes to clients waiting', async () => {
    const p = await proxy({ JSON_MEMORY_TTL: '0.002' }); // 120 ms
    await fetch(`${p.url}/3/movie/12`);
    upstream.control.rateLimitSeconds = 1;
    expect((await fetch(`${p.url}/3/movie/13`)).status).toBe(429);
    upstream.control.rateLimitSeconds = undefined;
    // A client's miss goes out as soon as the back-off has passed …
    await waitFor('the gate to open for a client miss', async () => {
      const r = await fetch(`${p.url}/3/movie/14`);
      await r.arrayBuffer();
      return r.status === 200;
    });
    // … while the expired entry is served stale and its refresh waits one more back-off.
    const stale = await fetch(`${p.url}/3/movie/12`);
    expect(stale.headers.get('x-cache')).toBe('STALE');
    const shed = await waitFor('the shed refresh to show', async () => {
      const r = await fetch(`${p.url}/3/movie/12`);
      return /fwd-status=429/.test(r.headers.get('cache-status') ?? '') ? r : undefined;
    });
    expect(shed.status).toBe(200);
    expect(upstream.stats.byPath['/3/movie/12']).toBe(1);
    const metrics = await (await fetch(`${p.url}/metrics`)).text();
    expect(metrics).toMatch(
      /tiercache_upstream_refresh_shed_total\{[^}]*upstream="tmdb"[^}]*\} [1-9]/,
    );
    // Once that has passed too, the refresh goes out.
    await waitFor('the refresh after the cool-down', async () => {
      await (await fetch(`${p.url}/3/movie/12`)).arrayBuffer();
      return upstream.stats.byPath['/3/movie/12'] === 2;
    });
  });

  it('decodes a compressed upstream answer before storing it, and refuses an encoding it cannot decode', async () => {
    const p = await proxy();
    for (const [i, encoding] of ['gzip', 'br', 'deflate'].entries()) {
      upstream.control.encoding = encoding;
      // Asked without Accept-Encoding: the upstream's encoding must not leak through.
      const first = await rawRequest(p.url, `/3/movie/${30 + i}`);
      expect(first.status, encoding).toBe(200);
      expect(first.headers['content-encoding'], encoding).toBeUndefined();
      expect(JSON.parse(first.body.toString()).title, encoding).toBe(`Demo Movie ${30 + i}`);
      const again = await fetch(`${p.url}/3/movie/${30 + i}`);
      expect(again.headers.get('x-cache'), encoding).toBe('L1');
      expect((await json(again)).title, encoding).toBe(`Demo Movie ${30 + i}`);
    }
    upstream.control.encoding = 'compress';
    const refused = await fetch(`${p.url}/3/movie/40`);
    expect(refused.status).toBe(502);
    expect((await json(refused)).message).toMatch(/unsupported Content-Encoding: compress/);
    await fetch(`${p.url}/3/movie/40`);
    expect(upstream.stats.byPath['/3/movie/40']).toBe(2); // nothing was stored
  });

  it('passes a redirect through with its Location, and never caches it', async () => {
    const p = await proxy();
    upstream.control.redirect = 'https://www.themoviedb.org/movie/41';
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${p.url}/3/movie/41`, { redirect: 'manual' });
      expect(res.status).toBe(301);
      expect(res.headers.get('location')).toBe('https://www.themoviedb.org/movie/41');
      expect(res.headers.get('cache-control')).toBe('no-store');
    }
    expect(upstream.stats.byPath['/3/movie/41']).toBe(2);
  });

  it('caps an image while it streams: a chunked answer over the limit is cut off and not kept', async () => {
    const p = await proxy();
    upstream.control.imageBytes = 2 ** 20;
    const fine = await fetch(`${p.url}/t/p/w500/one-mib.jpg`);
    expect(fine.status).toBe(200);
    expect((await fine.arrayBuffer()).byteLength).toBe(2 ** 20);
    upstream.control.imageBytes = 33 * 2 ** 20; // over the 32 MiB cap, with no Content-Length
    // It streams from its first bytes, so the client learns of the cap from a cut connection.
    const huge = await fetch(`${p.url}/t/p/original/huge.jpg`);
    expect(huge.status).toBe(200);
    await expect(huge.arrayBuffer()).rejects.toThrow();
    const again = await fetch(`${p.url}/t/p/original/huge.jpg`);
    expect(again.headers.get('x-cache')).toBe('MISS');
    await expect(again.arrayBuffer()).rejects.toThrow();
    expect(upstream.stats.byPath['/t/p/original/huge.jpg']).toBe(2);
  });

  it('streams an image miss to the client while the cache fills, then serves it from L1', async () => {
    const image = randomBytes(512 * 1024);
    const half = image.length / 2;
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let calls = 0;
    const images = await slowImageServer(async (res) => {
      calls += 1;
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': image.length });
      res.write(image.subarray(0, half));
      await released;
      res.end(image.subarray(half));
    });
    try {
      // Were the image buffered first, this request would end in a 504 after 5 s.
      const p = await proxy({ TMDB_IMAGE_URL: images.url, REQUEST_TIMEOUT: '5' });
      const res = await fetch(`${p.url}/t/p/original/big.jpg`);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-cache')).toBe('MISS');
      expect(res.headers.get('content-length')).toBe(String(image.length));
      const reader = res.body!.getReader();
      const parts: Uint8Array[] = [];
      let received = 0;
      while (received < half) {
        const { value } = await reader.read();
        parts.push(value!);
        received += value!.length;
      }
      // The first half is here while the upstream still holds the second.
      release();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parts.push(value);
      }
      expect(Buffer.concat(parts).equals(image)).toBe(true);
      const hit = await fetch(`${p.url}/t/p/original/big.jpg`);
      expect(hit.headers.get('x-cache')).toBe('L1');
      expect(Buffer.from(await hit.arrayBuffer()).equals(image)).toBe(true);
      expect(calls).toBe(1);
    } finally {
      release();
      await images.close();
    }
  });

  it('cuts the client off when the upstream breaks off mid-image, and keeps nothing', async () => {
    const image = randomBytes(256 * 1024);
    let calls = 0;
    const images = await slowImageServer(async (res) => {
      calls += 1;
      res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': image.length });
      if (calls === 1) {
        res.write(image.subarray(0, image.length / 2));
        await new Promise((resolve) => setTimeout(resolve, 50));
        res.destroy();
      } else res.end(image);
    });
    try {
      const p = await proxy({ TMDB_IMAGE_URL: images.url });
      const broken = await fetch(`${p.url}/t/p/original/torn.jpg`);
      expect(broken.status).toBe(200);
      await expect(broken.arrayBuffer()).rejects.toThrow();
      // Nothing of the torn answer was kept: the next request asks again and gets it whole.
      const whole = await fetch(`${p.url}/t/p/original/torn.jpg`);
      expect(whole.headers.get('x-cache')).toBe('MISS');
      expect(Buffer.from(await whole.arrayBuffer()).equals(image)).toBe(true);
      expect(calls).toBe(2);
    } finally {
      await images.close();
    }
  });

  it('backs off per origin: a 429 from the API does not stop image misses (another service)', async () => {
    const images = await startDemoUpstream();
    try {
      const p = await proxy({ TMDB_IMAGE_URL: images.url });
      upstream.control.rateLimitSeconds = 30;
      expect((await fetch(`${p.url}/3/movie/15`)).status).toBe(429);
      expect((await fetch(`${p.url}/3/movie/16`)).status).toBe(429);
      const poster = await fetch(`${p.url}/t/p/w500/poster.jpg`);
      expect(poster.status).toBe(200);
      expect(poster.headers.get('x-cache')).toBe('MISS');
      expect(images.stats.total).toBe(1);
    } finally {
      await images.close();
    }
  });

  it('serves an expired entry stale while one refresh runs, then the refreshed one', async () => {
    const p = await proxy({ JSON_MEMORY_TTL: '0.002' }); // 120 ms
    await fetch(`${p.url}/3/movie/8`);
    await new Promise((r) => setTimeout(r, 150)); // let it expire (a TTL, not a wait for a condition)
    const stale = await fetch(`${p.url}/3/movie/8`);
    expect(stale.headers.get('x-cache')).toBe('STALE');
    expect(stale.headers.get('cache-status')).toMatch(/detail=stale-while-revalidate/);
    await waitFor('the background refresh', () => upstream.stats.byPath['/3/movie/8'] === 2);
    const fresh = await waitFor('the refreshed entry in L1', async () => {
      const r = await fetch(`${p.url}/3/movie/8`);
      return r.headers.get('x-cache') === 'L1' ? r : undefined;
    });
    expect(fresh.status).toBe(200);
  });

  it('serves stale when the upstream fails after expiry (stale-if-error)', async () => {
    const p = await proxy({ JSON_MEMORY_TTL: '0.002' });
    const original = await json(fetch(`${p.url}/3/movie/9`));
    await new Promise((r) => setTimeout(r, 150));
    upstream.control.failStatus = 500;
    // The first request after expiry serves stale and revalidates in the background (which fails).
    await fetch(`${p.url}/3/movie/9`);
    await waitFor('the failed refresh', () => upstream.stats.byPath['/3/movie/9'] === 2);
    const res = await fetch(`${p.url}/3/movie/9`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-cache')).toBe('STALE');
    expect(await json(res)).toEqual(original);
    // The refresh just failed: this request does not start another (a per-key back-off), and
    // says it serves stale because of that error.
    expect(res.headers.get('cache-status')).toMatch(
      /fwd=stale; fwd-status=500; .*detail=stale-if-error/,
    );
    expect(upstream.stats.byPath['/3/movie/9']).toBe(2);
  });

  it('makes one upstream call for 100 concurrent misses of one key', async () => {
    const p = await proxy();
    upstream.control.delayMs = 100;
    const all = await Promise.all(Array.from({ length: 100 }, () => fetch(`${p.url}/3/movie/10`)));
    expect(all.every((r) => r.status === 200)).toBe(true);
    expect(upstream.stats.byPath['/3/movie/10']).toBe(1);
    const metrics = await (await fetch(`${p.url}/metrics`)).text();
    expect(metrics).toMatch(/tiercache_coalesced_waits_total\{scope="process",region="local"\} 99/);
  });

  it('answers 504 past REQUEST_TIMEOUT while the fetch goes on and fills the cache', async () => {
    const p = await proxy({
      REQUEST_TIMEOUT: '0.3',
      UPSTREAM_TIMEOUT: '5',
      CRYPTO_API_URL: `${upstream.url}/api/v3`,
      CRYPTO_API_KEY: API_KEY,
    });
    upstream.control.delayMs = 1500; // slower than the request may wait, within the upstream's timeout
    for (const path of ['/3/movie/11', '/api/latest_prices?symbols=BTC']) {
      const late = await fetch(`${p.url}${path}`);
      expect(late.status).toBe(504);
      expect(await late.json()).toMatchObject({ error: 'TIMEOUT' });
    }
    // The movie's fetch was not given up: once it lands, it is an L1 hit, and it was the only call.
    await waitFor('the first fetch to fill L1', async () => {
      const res = await fetch(`${p.url}/3/movie/11`);
      return res.status === 200 && res.headers.get('x-cache') === 'L1';
    });
    expect(upstream.stats.byPath['/3/movie/11']).toBe(1);
  });

  it('keeps a class out of L1 when its memory TTL is 0', async () => {
    const p = await proxy({ SEARCH_MEMORY_TTL: '0' });
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${p.url}/3/search/movie?query=alien`);
      expect(res.headers.get('x-cache')).toBe('MISS');
    }
    expect(upstream.stats.byPath['/3/search/movie']).toBe(2);
  });
});

describe('malformed requests get a 4xx, never a 500', () => {
  it.each([
    ['/3/movie/%2e%2e/x', 400],
    ['/3/movie/../../etc/passwd', 400],
    ['/3/movie/%zz', 400],
    ['/nope', 404],
    ['/cache/keys?limit=abc', 400],
    ['/cache/keys?limit=0', 400],
    ['/cache/keys?limit=1001', 400],
    ['/cache/search', 400],
  ])('GET %s → %i', async (path, status) => {
    const p = await proxy();
    const res = await rawGet(p.url, path);
    expect(res.status).toBe(status);
    expect(JSON.parse(res.body).error).toBeTypeOf('string');
  });

  it('rejects a bad clear type', async () => {
    const p = await proxy();
    const res = await fetch(`${p.url}/cache/clear?type=everything`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(res.status).toBe(400);
  });
});

describe('cache management and system routes', () => {
  it('protects mutating routes with ADMIN_TOKEN', async () => {
    const p = await proxy();
    expect((await fetch(`${p.url}/cache/clear`, { method: 'POST' })).status).toBe(401);
    expect(
      (
        await fetch(`${p.url}/cache/clear`, {
          method: 'POST',
          headers: { authorization: 'Bearer nope' },
        })
      ).status,
    ).toBe(401);
    const ok = await fetch(`${p.url}/cache/clear?type=memory`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(ok.status).toBe(200);
    const off = await proxy({ ADMIN_TOKEN: '' });
    expect(
      (
        await fetch(`${off.url}/cache/clear`, {
          method: 'POST',
          headers: { authorization: `Bearer ${ADMIN}` },
        })
      ).status,
    ).toBe(403);
  });

  it('needs the admin token to read keys, topology, usage or config; probes, metrics and status stay open', async () => {
    const p = await proxy();
    await fetch(`${p.url}/3/movie/13`);
    const protectedReads = [
      '/cache/keys',
      '/cache/search?q=movie',
      '/cache/info',
      '/cache/nodes',
      '/api/cache/stats',
      '/config',
    ];
    for (const path of protectedReads) {
      const without = await fetch(`${p.url}${path}`);
      expect(without.status, path).toBe(401);
      // The refusal shows nothing of the cache.
      expect(await without.text(), path).not.toContain('movie/13');
      const wrong = await fetch(`${p.url}${path}`, { headers: { authorization: 'Bearer nope' } });
      expect(wrong.status, path).toBe(401);
      expect((await fetch(`${p.url}${path}`, admin)).status, path).toBe(200);
    }
    for (const path of ['/health', '/ready', '/metrics', '/status', '/stats'])
      expect((await fetch(`${p.url}${path}`)).status, path).toBe(200);
  });

  it('clears L1, lists and searches keys, and reports /cache/info in the seed shape', async () => {
    const p = await proxy();
    await fetch(`${p.url}/3/movie/11`);
    await fetch(`${p.url}/3/search/movie?query=matrix`);
    const first = await json(fetch(`${p.url}/cache/keys?limit=1`, admin));
    expect(first.keys).toHaveLength(1);
    expect(first.has_more).toBe(true);
    const rest = await json(fetch(`${p.url}/cache/keys?limit=5&cursor=${first.cursor}`, admin));
    expect(rest).toMatchObject({ has_more: false, cursor: null });
    expect([...first.keys, ...rest.keys].map((k: { key: string }) => k.key).sort()).toEqual([
      'tmdb:/3/movie/11',
      'tmdb:/3/search/movie?query=matrix',
    ]);
    const found = await json(fetch(`${p.url}/cache/search?q=matrix`, admin));
    expect(found.keys.map((k: { key: string }) => k.key)).toEqual([
      'tmdb:/3/search/movie?query=matrix',
    ]);

    const info = await json(fetch(`${p.url}/cache/info`, admin));
    expect(info).toMatchObject({
      cache_enabled: true,
      memory_cache: { current_size: 2 },
      l2_cache: { type: 'disabled' },
    });
    expect(info.memory_cache.hit_rate).toBeTypeOf('number');

    const cleared = await json(
      fetch(`${p.url}/cache/clear?type=memory`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}` },
      }),
    );
    expect(cleared.memory_cleared).toBe(2);
    expect((await fetch(`${p.url}/3/movie/11`)).headers.get('x-cache')).toBe('MISS');
  });

  it('serves /status, /stats, /health, /ready, /config and /metrics', async () => {
    const p = await proxy({ REGION: 'eu-west-1' });
    await fetch(`${p.url}/3/movie/12`);
    await fetch(`${p.url}/3/movie/12`);
    expect(await json(fetch(`${p.url}/health`))).toEqual({ status: 'ok' });
    expect((await fetch(`${p.url}/ready`)).status).toBe(200);
    expect(await json(fetch(`${p.url}/status`))).toMatchObject({
      status: 'ok',
      region: 'eu-west-1',
      upstream: 'tmdb',
      demo_data: false,
    });
    expect(await json(fetch(`${p.url}/stats`))).toMatchObject({
      l1_hits: 1,
      l1_misses: 1,
      l1_hit_rate: 0.5,
    });
    const config = await json(fetch(`${p.url}/config`, admin));
    expect(config.env.TMDB_API_KEY).toBe('(set, redacted)');
    expect(config.env.ADMIN_TOKEN).toBe('(set, redacted)');
    const metrics = await (await fetch(`${p.url}/metrics`)).text();
    expect(metrics).toContain(
      'tiercache_cache_hits_total{tier="l1",category="json",region="eu-west-1"} 1',
    );
    expect(metrics).toContain(
      'tiercache_upstream_request_duration_seconds_count{region="eu-west-1",upstream="tmdb",status="200"} 1',
    );
    expect(await json(fetch(`${p.url}/api/cache/stats`, admin))).toMatchObject({
      l1_hits: 1,
      categories: { json: { l1_hits: 1, l1_misses: 1, l1_hit_rate: 0.5 } },
      upstreams: { tmdb: { requests: 1, errors: 0 } },
    });
  });

  it('times answers per route class and source (tiercache_request_duration_seconds)', async () => {
    const p = await proxy({ REGION: 'eu-west-1' });
    for (const path of ['/3/movie/13', '/3/movie/13', '/3/movie/13', '/t/p/w92/a.jpg'])
      await (await fetch(`${p.url}${path}`)).arrayBuffer();
    const metrics = await (await fetch(`${p.url}/metrics`)).text();
    const name = 'tiercache_request_duration_seconds';
    const series = (route: string, source: string) => {
      const labels = `region="eu-west-1",route="${route}",source="${source}"`;
      const value = (line: string) => Number(line.split(' ').at(-1));
      const lines = metrics.split('\n');
      return {
        buckets: lines.filter((l) => l.startsWith(`${name}_bucket{${labels},`)).map(value),
        count: value(lines.find((l) => l.startsWith(`${name}_count{${labels}}`)) ?? 'NaN'),
      };
    };
    expect(metrics.match(new RegExp(`# TYPE ${name} histogram`, 'g'))).toHaveLength(1);
    for (const [route, source, count] of [
      ['tmdb', 'MISS', 1],
      ['tmdb', 'L1', 2],
      ['images', 'MISS', 1],
      ['images', 'L1', 0],
      ['crypto', 'L2', 0],
    ] as const) {
      const { buckets, count: seen } = series(route, source);
      expect(seen).toBe(count);
      // Cumulative, ending at +Inf with every answer.
      expect(buckets).toEqual([...buckets].sort((a, b) => a - b));
      expect(buckets.at(-1)).toBe(count);
    }
  });

  it('labels built-in demo data when no key and no upstream URL are given', async () => {
    const p = await startProxy({});
    proxies.push(p);
    const res = await fetch(`${p.url}/3/movie/550`);
    expect(res.headers.get('x-demo-data')).toMatch(/demo data/i);
    expect((await json(res))._demo).toMatch(/not from TMDB/);
    expect(await json(fetch(`${p.url}/status`))).toMatchObject({ demo_data: true });
  });
});

describe('the tiercache CLI', () => {
  it('stops start-up on a bad value, naming the variable and the allowed values', async () => {
    const { code, output } = await runCli(['proxy'], { JSON_DISK_TTL: 'six hours' });
    expect(code).toBe(78);
    expect(output).toContain(
      'JSON_DISK_TTL: invalid value "six hours"; allowed: a number of minutes',
    );
  });

  it('describes every proxy variable in --help', async () => {
    const { code, output } = await runCli(['proxy', '--help'], {});
    expect(code).toBe(0);
    for (const name of [
      'PORT',
      'REDIS_CLUSTER_NODES',
      'REDIS_FALLBACK_NODES',
      'JSON_MEMORY_TTL',
      'IMAGE_DISK_TTL',
      'SEARCH_DISK_TTL',
      'ADMIN_TOKEN',
      'L1_MAX_BYTES',
    ]) {
      expect(output).toContain(name);
    }
  });
});
