/**
 * Published API clients with their base URL set to the proxy, unchanged otherwise: CoinGecko's
 * official `@coingecko/coingecko-typescript` on the `/api/v3/*` pass-through, and
 * `moviedb-promise` on `/3/*`. Each sends a key of its own; the proxy answers with the
 * server-side key (the fake upstream accepts only that one), caches what is public in both
 * tiers, and keeps a user's session out of every key, entry and log line.
 */
import Coingecko, { NotFoundError } from '@coingecko/coingecko-typescript';
import { MovieDb } from 'moviedb-promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type DemoUpstream, startDemoUpstream } from '../../proxy/upstreams/demo-server.ts';
import { json } from '../helpers/json.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { type RedisNode, startRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

const SERVER_KEY = 'a1b2c3d4e5f60718293a4b5c6d7e8f90';
const CLIENT_KEY = 'client-key-that-stays-here';
const ADMIN = 'clients-admin';
let upstream: DemoUpstream;
let redis: RedisNode;
let p: RunningProxy;

beforeAll(async () => {
  [upstream, redis] = await Promise.all([startDemoUpstream({ apiKey: SERVER_KEY }), startRedis()]);
  p = await startProxy({
    TMDB_API_URL: upstream.url,
    TMDB_IMAGE_URL: upstream.url,
    TMDB_API_KEY: SERVER_KEY,
    CRYPTO_API_URL: `${upstream.url}/api/v3`,
    CRYPTO_API_KEY: SERVER_KEY,
    REDIS_CLUSTER_NODES: `${redis.host}:${redis.port}`,
    ADMIN_TOKEN: ADMIN,
  });
  await waitFor('L2', async () => (await json(fetch(`${p.url}/ready`))).l2 === 'ok');
});
afterEach(async () => {
  upstream.reset();
});
afterAll(async () => {
  await p?.close();
  await Promise.all([upstream?.close(), redis?.stop()]);
});

/** Every L2 key, and every stored value as text: what a secret must never be part of. */
async function storedText(): Promise<string> {
  const client = redis.client();
  const keys = await client.keys('*');
  const values = await Promise.all(
    keys.map(async (k) =>
      (await client.type(k)) === 'string' ? ((await client.getBuffer(k))?.toString() ?? '') : '',
    ),
  );
  return [...keys, ...values].join('\n');
}

describe('@coingecko/coingecko-typescript with baseURL = the proxy', () => {
  const client = () =>
    new Coingecko({ baseURL: `${p.url}/api/v3`, demoAPIKey: CLIENT_KEY, maxRetries: 0 });

  it('gets prices, markets, global figures and charts, answered with the server key', async () => {
    const cg = client();
    const prices = await cg.simple.price.get({ ids: 'bitcoin,ethereum', vs_currencies: 'usd' });
    expect(prices.bitcoin?.usd).toBeGreaterThan(1000);
    expect(prices.ethereum?.usd).toBeGreaterThan(100);
    expect(upstream.stats.lastAuth).toBe('header');
    expect(upstream.stats.rejected).toBe(0);

    // Ranked as CoinGecko ranks them: Bitcoin before the small coin that shares its symbol.
    const markets = await cg.coins.markets.get({ vs_currency: 'usd', ids: 'batcat,bitcoin' });
    expect(markets.map((m) => m.id)).toEqual(['bitcoin', 'batcat']);

    const global = await cg.global.get();
    expect(global.data?.active_cryptocurrencies).toBe(2000);

    const chart = await cg.coins.marketChart.get('bitcoin', { vs_currency: 'usd', days: '1' });
    expect(chart.prices.length).toBeGreaterThan(280); // 5-minute points over a day
  });

  it('caches each answer under its endpoint class: the second ask is a hit', async () => {
    const cg = client();
    const query = { ids: 'solana', vs_currencies: 'usd' };
    const first = await cg.simple.price.get(query).withResponse();
    expect(first.response.headers.get('x-cache')).toBe('MISS');
    const again = await cg.simple.price.get(query).withResponse();
    expect(again.response.headers.get('x-cache')).toBe('L1');
    expect(again.data).toEqual(first.data);
    expect(upstream.stats.byPath['/api/v3/simple/price']).toBe(1);

    // Stored under the prices category (cleared with it), keyed without any key.
    expect(
      await redis.client().exists('tc:crypto:prices:v3/simple/price?ids=solana&vs_currencies=usd'),
    ).toBe(1);
    const cleared = await fetch(`${p.url}/cache/clear?category=prices`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}` },
    });
    expect(cleared.status).toBe(200);
    const afterClear = await cg.simple.price.get(query).withResponse();
    expect(afterClear.response.headers.get('x-cache')).toBe('MISS');
    expect(upstream.stats.byPath['/api/v3/simple/price']).toBe(2);
  });

  it('passes the upstream’s 404 on as the client’s NotFoundError, and never serves /key', async () => {
    const cg = client();
    await expect(
      cg.coins.marketChart.get('no-such-coin', { vs_currency: 'usd', days: '1' }),
    ).rejects.toBeInstanceOf(NotFoundError);
    // The key's plan and usage are the proxy's own: not shared through it.
    await expect(cg.key.get()).rejects.toBeInstanceOf(NotFoundError);
    expect(upstream.stats.byPath['/api/v3/key']).toBeUndefined();
  });

  it('keeps both keys out of L2 and the logs', async () => {
    await client().simple.price.get({ ids: 'cardano', vs_currencies: 'eur' });
    const stored = await storedText();
    expect(stored).toContain('cardano');
    expect(stored).not.toContain(CLIENT_KEY);
    expect(stored).not.toContain(SERVER_KEY);
    expect(p.logs()).not.toContain(CLIENT_KEY);
    expect(p.logs()).not.toContain(SERVER_KEY);
  });
});

describe('moviedb-promise with its base URL = the proxy', () => {
  const client = () => new MovieDb(CLIENT_KEY, `${p.url}/3/`);

  it('reads movies and searches, answered with the server key and cached', async () => {
    const tmdb = client();
    const movie = await tmdb.movieInfo({ id: 550 });
    expect(movie.title).toBe('Demo Movie 550');
    expect(upstream.stats.lastAuth).toBe('query');
    expect(upstream.stats.rejected).toBe(0);
    expect(await tmdb.movieInfo({ id: 550 })).toEqual(movie);
    expect(upstream.stats.byPath['/3/movie/550']).toBe(1);

    const found = await tmdb.searchMovie({ query: 'heat', page: 2 });
    expect(found.page).toBe(2);
    expect(found.results).toHaveLength(5);
    await tmdb.searchMovie({ query: 'heat', page: 2 });
    expect(upstream.stats.byPath['/3/search/movie']).toBe(1);
  });

  it('passes a session’s own requests through, uncached, and stores the session nowhere', async () => {
    // The client keeps its own token, so two clients ask: each gets a new one.
    const tokens = [await client().requestToken(), await client().requestToken()];
    expect(tokens[0]!.request_token).not.toBe(tokens[1]!.request_token);
    expect(upstream.stats.byPath['/3/authentication/token/new']).toBe(2);

    const tmdb = client();

    tmdb.sessionId = 'session-of-one-user';
    const mine = await tmdb.accountInfo();
    expect(mine.username).toMatch(/^user-[0-9a-f]{8}$/);
    await tmdb.accountInfo();
    expect(upstream.stats.byPath['/3/account']).toBe(2);
    tmdb.sessionId = 'session-of-another-user';
    expect((await tmdb.accountInfo()).username).not.toBe(mine.username);

    const stored = await storedText();
    expect(stored).not.toContain('session-of-');
    expect(stored).not.toContain(CLIENT_KEY);
    expect(p.logs()).not.toContain('session-of-');
  });
});
