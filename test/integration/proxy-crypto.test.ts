/**
 * The crypto routes against the CoinGecko-shaped fake upstream: batched prices cached per
 * symbol, one upstream call for all missing symbols, shared through L2, stale-if-error,
 * symbol validation, and the key kept server-side.
 */
import { describe, expect, it } from 'vitest';
import { json } from '../helpers/json.ts';
import { useRedisFixture } from '../helpers/l2-fixture.ts';
import { type RunningProxy, rawGet, startProxy } from '../helpers/proxy.ts';
import { waitFor } from '../helpers/wait.ts';

const KEY = 'CG-demo-key-123';
const fx = useRedisFixture(KEY);

async function proxy(env: Record<string, string> = {}): Promise<RunningProxy> {
  const p = await startProxy({
    CRYPTO_API_URL: `${fx.upstream.url}/api/v3`,
    CRYPTO_API_KEY: KEY,
    ADMIN_TOKEN: ADMIN,
    ...env,
  });
  fx.proxies.push(p);
  return p;
}
const PRICE = '/api/v3/simple/price';
const ADMIN = 'crypto-admin';
const admin = { headers: { authorization: `Bearer ${ADMIN}` } };

describe('GET /api/latest_prices', () => {
  it('answers many symbols with one upstream call, then from L1', async () => {
    const p = await proxy();
    const first = await fetch(`${p.url}/api/latest_prices?symbols=btc,ETH,sol`);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-cache')).toBe('MISS');
    const body = await json(first);
    expect(Object.keys(body.prices)).toEqual(['BTC', 'ETH', 'SOL']);
    expect(body.prices.BTC.price).toBeGreaterThan(1000);
    expect(body.prices.ETH).toMatchObject({
      source: 'MISS',
      change_24h: expect.any(Number),
      market_cap: expect.any(Number),
    });
    expect(fx.upstream.stats.byPath[PRICE]).toBe(1);
    expect(new URLSearchParams(fx.upstream.stats.lastQuery[PRICE]).get('ids')).toBe(
      'bitcoin,ethereum,solana',
    );
    expect(fx.upstream.stats.lastAuth).toBe('header');

    const again = await fetch(`${p.url}/api/latest_prices?symbols=BTC,ETH,SOL`);
    expect(again.headers.get('x-cache')).toBe('L1');
    expect((await json(again)).prices.BTC.price).toBe(body.prices.BTC.price);
    expect(fx.upstream.stats.byPath[PRICE]).toBe(1);
  });

  it('fetches only the symbols it does not have, in one call', async () => {
    const p = await proxy();
    await fetch(`${p.url}/api/latest_prices?symbols=BTC,ETH`);
    const mixed = await json(fetch(`${p.url}/api/latest_prices?symbols=BTC,ETH,XRP,C0042`));
    expect(mixed.prices.BTC.source).toBe('L1');
    expect(mixed.prices.XRP.source).toBe('MISS');
    expect(fx.upstream.stats.byPath[PRICE]).toBe(2);
    expect(new URLSearchParams(fx.upstream.stats.lastQuery[PRICE]).get('ids')).toBe(
      'ripple,demo-coin-0042',
    );
  });

  it('shares prices between replicas through L2', async () => {
    const spec = `${fx.standalone.host}:${fx.standalone.port}`;
    const a = await proxy({ REDIS_CLUSTER_NODES: spec });
    const b = await proxy({ REDIS_CLUSTER_NODES: spec });
    for (const p of [a, b])
      await waitFor('L2', async () => (await json(fetch(`${p.url}/ready`))).l2 === 'ok');
    await fetch(`${a.url}/api/latest_prices?symbols=BTC,DOGE`);
    const fromB = await json(fetch(`${b.url}/api/latest_prices?symbols=BTC,DOGE`));
    expect(fromB.prices.BTC.source).toBe('L2');
    expect(fromB.prices.DOGE.source).toBe('L2');
    expect(fx.upstream.stats.byPath[PRICE]).toBe(1);
    expect(await fx.standalone.client().exists('tc:crypto:prices:bitcoin:usd')).toBe(1);
  });

  it('fetches each symbol once when overlapping batches run at once on two replicas', async () => {
    const spec = `${fx.standalone.host}:${fx.standalone.port}`;
    const a = await proxy({ REDIS_CLUSTER_NODES: spec });
    const b = await proxy({ REDIS_CLUSTER_NODES: spec });
    for (const p of [a, b]) {
      await waitFor('L2', async () => (await json(fetch(`${p.url}/ready`))).l2 === 'ok');
      await fetch(`${p.url}/api/latest_prices?symbols=USDT`); // coin list cached first
    }
    fx.upstream.reset();
    fx.upstream.control.delayMs = 300; // long enough for the batches to overlap
    const batches = [
      [a, 'BTC,ETH,SOL'],
      [b, 'ETH,SOL,XRP'],
      [a, 'SOL,ADA'],
      [b, 'BTC,ADA,DOGE'],
    ] as const;
    const answers = await Promise.all(
      batches.map(([p, symbols]) => json(fetch(`${p.url}/api/latest_prices?symbols=${symbols}`))),
    );

    const asked = (fx.upstream.stats.queries[PRICE] ?? []).flatMap((q) =>
      new URLSearchParams(q).get('ids')!.split(','),
    );
    expect(asked.sort()).toEqual([
      'bitcoin',
      'cardano',
      'dogecoin',
      'ethereum',
      'ripple',
      'solana',
    ]);
    // Everyone got the same quote for a symbol, whichever request fetched it.
    const priceOf = (sym: string) =>
      new Set(answers.flatMap((x) => (x.prices[sym] ? [x.prices[sym].price] : [])));
    for (const sym of ['BTC', 'ETH', 'SOL', 'ADA']) expect(priceOf(sym).size).toBe(1);
    const stats = await json(fetch(`${a.url}/api/cache/stats`, admin));
    const statsB = await json(fetch(`${b.url}/api/cache/stats`, admin));
    expect(stats.coalesced_in_process + statsB.coalesced_in_process).toBeGreaterThan(0);
    expect(stats.coalesced_across_replicas + statsB.coalesced_across_replicas).toBeGreaterThan(0);
  });

  it('serves stale prices when the upstream fails after they expired', async () => {
    const p = await proxy({ CRYPTO_PRICE_TTL: '0.05' });
    const fresh = await json(fetch(`${p.url}/api/latest_prices?symbols=ADA`));
    await new Promise((r) => setTimeout(r, 100)); // let the 50 ms TTL pass
    fx.upstream.control.failStatus = 500;
    const res = await fetch(`${p.url}/api/latest_prices?symbols=ADA`);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-cache')).toBe('STALE');
    const stale = await json(res);
    expect(stale.prices.ADA).toMatchObject({ source: 'STALE', price: fresh.prices.ADA.price });
  });

  it('answers the known symbols of a batch and names the unknown ones; none known is a 404', async () => {
    const p = await proxy();
    const some = await fetch(`${p.url}/api/latest_prices?symbols=BTC,NOSUCH1,NOSUCH2`);
    expect(some.status).toBe(200);
    const body = await json(some);
    expect(Object.keys(body.prices)).toEqual(['BTC']);
    expect(body.errors).toEqual({
      NOSUCH1: { error: 'NOT_FOUND', message: 'unknown symbol NOSUCH1' },
      NOSUCH2: { error: 'NOT_FOUND', message: 'unknown symbol NOSUCH2' },
    });
    expect(new URLSearchParams(fx.upstream.stats.lastQuery[PRICE]).get('ids')).toBe('bitcoin');
    const none = await fetch(`${p.url}/api/latest_prices?symbols=NOSUCH1,NOSUCH2`);
    expect(none.status).toBe(404);
    expect((await json(none)).unknown).toEqual(['NOSUCH1', 'NOSUCH2']);
  });

  it('fails only the coin the upstream has no price for, and stores nothing for it', async () => {
    const p = await proxy({ REDIS_CLUSTER_NODES: `${fx.standalone.host}:${fx.standalone.port}` });
    await waitFor('L2', async () => (await json(fetch(`${p.url}/ready`))).l2 === 'ok');
    const res = await fetch(`${p.url}/api/latest_prices?ids=ethereum,no-such-coin`);
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body.prices.ethereum).toMatchObject({ id: 'ethereum', source: 'MISS' });
    expect(body.errors['no-such-coin'].error).toBe('NOT_FOUND');
    expect(new URLSearchParams(fx.upstream.stats.lastQuery[PRICE]).get('ids')).toBe(
      'ethereum,no-such-coin',
    );
    expect(await fx.standalone.client().exists('tc:crypto:prices:no-such-coin:usd')).toBe(0);
    expect(await fx.standalone.client().exists('tc:crypto:prices:ethereum:usd')).toBe(1);
  });

  it('serves stale coins and fails the rest alone when the upstream fails', async () => {
    const p = await proxy({ CRYPTO_PRICE_TTL: '0.05' });
    const fresh = await json(fetch(`${p.url}/api/latest_prices?symbols=ADA`));
    await new Promise((r) => setTimeout(r, 100)); // let the 50 ms TTL pass
    fx.upstream.control.failStatus = 500;
    const res = await fetch(`${p.url}/api/latest_prices?symbols=ADA,XRP`);
    expect(res.status).toBe(200);
    const body = await json(res);
    expect(body.prices.ADA).toMatchObject({ source: 'STALE', price: fresh.prices.ADA.price });
    expect(body.errors.XRP.error).toBe('UPSTREAM_FAILED');
    expect(res.headers.get('x-cache')).toBe('STALE');
  });

  it('rejects malformed and too many symbols or ids with a 400 naming them', async () => {
    const p = await proxy();
    const bad = await fetch(`${p.url}/api/latest_prices?symbols=BTC,b%40d`);
    expect(bad.status).toBe(400);
    expect((await json(bad)).message).toMatch(/B@D/);
    expect((await fetch(`${p.url}/api/latest_prices`)).status).toBe(400);
    const many = Array.from({ length: 251 }, (_, i) => `C${String(i + 1).padStart(4, '0')}`).join(
      ',',
    );
    expect((await fetch(`${p.url}/api/latest_prices?symbols=${many}`)).status).toBe(400);
    const badId = await fetch(`${p.url}/api/latest_prices?ids=bitcoin,no%20such`);
    expect(badId.status).toBe(400);
    expect((await json(badId)).invalid).toEqual(['no such']);
    expect((await fetch(`${p.url}/api/latest_prices?ids=bitcoin&symbols=BTC`)).status).toBe(400);
    expect(fx.upstream.stats.byPath[PRICE]).toBeUndefined();
  });

  it('keeps the API key server-side', async () => {
    const p = await proxy();
    const res = await fetch(`${p.url}/api/latest_prices?symbols=BTC`);
    const text = await res.text();
    const keys = await (await fetch(`${p.url}/cache/keys?limit=100`, admin)).text();
    for (const seen of [
      text,
      keys,
      p.logs(),
      JSON.stringify([...res.headers]),
      fx.upstream.stats.lastQuery[PRICE] ?? '',
    ]) {
      expect(seen).not.toContain(KEY);
    }
  });
});

describe('symbols several coins share', () => {
  const MARKETS = '/api/v3/coins/markets';

  it('mean the coin with the best market-cap rank, not the first listed, settled in one call', async () => {
    const p = await proxy({ REDIS_CLUSTER_NODES: `${fx.standalone.host}:${fx.standalone.port}` });
    await waitFor('L2', async () => (await json(fetch(`${p.url}/ready`))).l2 === 'ok');
    // The demo list, like CoinGecko's, is sorted by id: batcat (btc) comes before bitcoin.
    const list = await json(
      fetch(`${fx.upstream.url}/api/v3/coins/list`, { headers: { 'x-cg-demo-api-key': KEY } }),
    );
    const btcs = list.filter((c: { symbol: string }) => c.symbol === 'btc');
    expect(btcs[0].id).toBe('batcat');
    expect(btcs.length).toBeGreaterThan(1);

    const body = await json(fetch(`${p.url}/api/latest_prices?symbols=BTC,ETH,SOL,DOGE`));
    expect(body.prices.BTC.id).toBe('bitcoin');
    expect(body.prices.ETH.id).toBe('ethereum');
    expect(body.prices.SOL.id).toBe('solana');
    expect(body.prices.DOGE.id).toBe('dogecoin');
    // DOGE has one coin: no rank needed. The three shared symbols: one markets call.
    expect(fx.upstream.stats.byPath[MARKETS]).toBe(1);
    const asked = new URLSearchParams(fx.upstream.stats.lastQuery[MARKETS]).get('ids')!.split(',');
    expect(asked).toEqual(expect.arrayContaining(['batcat', 'bitcoin', 'ethereum-meme']));
    expect(asked).not.toContain('dogecoin');
    expect(await fx.standalone.client().exists('tc:crypto:meta:symbol:BTC')).toBe(1);

    // The choice is cached with the coin list: a second replica asks nothing to resolve.
    const q = await proxy({ REDIS_CLUSTER_NODES: `${fx.standalone.host}:${fx.standalone.port}` });
    await waitFor('L2', async () => (await json(fetch(`${q.url}/ready`))).l2 === 'ok');
    expect((await json(fetch(`${q.url}/api/latest_prices?symbols=BTC`))).prices.BTC.id).toBe(
      'bitcoin',
    );
    expect(fx.upstream.stats.byPath[MARKETS]).toBe(1);
  });

  it('follow the override table, and ids= names a coin directly', async () => {
    const p = await proxy({ CRYPTO_SYMBOL_IDS: 'btc=batcat' });
    const pinned = await json(fetch(`${p.url}/api/latest_prices?symbols=BTC`));
    expect(pinned.prices.BTC.id).toBe('batcat');
    expect(fx.upstream.stats.byPath[MARKETS]).toBeUndefined();
    const byId = await json(fetch(`${p.url}/api/latest_prices?ids=bitcoin,batcat`));
    expect(Object.keys(byId.prices)).toEqual(['bitcoin', 'batcat']);
    expect(byId.prices.bitcoin.price).toBeGreaterThan(byId.prices.batcat.price);
    // batcat's quote came from the symbol request: cached under its id, not asked again.
    expect(byId.prices.batcat.source).toBe('L1');
  });

  it('reject a bad override table at start, naming the variable', async () => {
    await expect(proxy({ CRYPTO_SYMBOL_IDS: 'BTC:bitcoin' })).rejects.toThrow(/CRYPTO_SYMBOL_IDS/);
  });
});

describe('quota back-off across replicas', () => {
  it('a 429 seen by one replica holds the others too, through Redis', async () => {
    const spec = `${fx.standalone.host}:${fx.standalone.port}`;
    const a = await proxy({ REDIS_CLUSTER_NODES: spec });
    const b = await proxy({ REDIS_CLUSTER_NODES: spec });
    for (const p of [a, b])
      await waitFor('L2', async () => (await json(fetch(`${p.url}/ready`))).l2 === 'ok');
    await fetch(`${a.url}/api/latest_prices?symbols=BTC`); // warms the coin list for both
    fx.upstream.control.rateLimitSeconds = 30;
    const limited = await fetch(`${a.url}/api/latest_prices?symbols=ETH`);
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('30');
    const calls = fx.upstream.stats.total;
    const other = await fetch(`${b.url}/api/latest_prices?symbols=SOL`);
    expect(other.status).toBe(429);
    expect(Number(other.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(fx.upstream.stats.total).toBe(calls); // b never called the upstream
    // Kept per upstream and origin (TMDB's images are another service than its API).
    const origin = new URL(fx.upstream.url).host;
    expect(Number(await fx.standalone.client().get(`tc-backoff:crypto@${origin}`))).toBeGreaterThan(
      Date.now(),
    );
  });
});

describe('cache categories', () => {
  it('counts keys per category and clears one category on every replica and in L2', async () => {
    const spec = `${fx.standalone.host}:${fx.standalone.port}`;
    const env = { REDIS_CLUSTER_NODES: spec };
    const a = await proxy(env);
    const b = await proxy(env);
    for (const p of [a, b])
      await waitFor(
        'L2 and the bus',
        async () =>
          (await json(fetch(`${p.url}/ready`))).l2 === 'ok' && p.proxy.bus!.subscribed > 0,
      );
    await fetch(`${a.url}/api/latest_prices?symbols=BTC,ETH`);
    await fetch(`${a.url}/api/market_indicators`);
    await fetch(`${b.url}/api/latest_prices?symbols=BTC,ETH`);

    const before = await json(fetch(`${a.url}/api/cache/stats`, admin));
    expect(before.categories.prices).toMatchObject({ l1_keys: 2, l2_keys: 2 });
    expect(before.categories.prices.l2_bytes).toBeGreaterThan(0);
    expect(before.categories.indicators).toMatchObject({ l1_keys: 1, l2_keys: 1 });
    expect(before.categories.prices.l1_bytes).toBeGreaterThan(0);

    const bad = await fetch(`${a.url}/api/cache/clear?category=everything`, {
      method: 'POST',
      ...admin,
    });
    expect(bad.status).toBe(400);
    const cleared = await json(
      fetch(`${a.url}/api/cache/clear?category=prices`, {
        method: 'POST',
        ...admin,
      }),
    );
    expect(cleared).toMatchObject({
      category: 'prices',
      memory_cleared: 2,
      l2_cleared: 2,
      replicas_notified: true,
    });
    await waitFor(
      'b to drop its prices',
      () => b.proxy.cache.l1.usage('tc:crypto:prices:').entries === 0,
    );
    const after = await json(fetch(`${b.url}/api/cache/stats`, admin));
    expect(after.categories.prices).toMatchObject({ l1_keys: 0, l2_keys: 0, l2_bytes: 0 });
    expect(after.categories.indicators.l2_keys).toBe(1);
  });
});

describe('GET /api/market_indicators', () => {
  it('serves the global market indicators, cached', async () => {
    const p = await proxy();
    const first = await fetch(`${p.url}/api/market_indicators`);
    expect(first.headers.get('x-cache')).toBe('MISS');
    const body = await json(first);
    expect(body).toMatchObject({
      active_cryptocurrencies: 2000,
      btc_dominance: expect.any(Number),
    });
    expect(body.total_market_cap_usd).toBeGreaterThan(0);
    expect((await fetch(`${p.url}/api/market_indicators`)).headers.get('x-cache')).toBe('L1');
    expect(fx.upstream.stats.byPath['/api/v3/global']).toBe(1);
  });
});

describe('GET /api/v3/* (the CoinGecko-compatible pass-through)', () => {
  it('refuses a path with dot segments or encoded slashes as a 400, asking nothing upstream', async () => {
    const p = await proxy();
    for (const path of ['/api/v3/coins/%2e%2e/key', '/api/v3/coins/a%2Fb/history']) {
      const res = await rawGet(p.url, path);
      expect(res.status, path).toBe(400);
      expect(JSON.parse(res.body).error).toBe('BAD_REQUEST');
    }
    expect(fx.upstream.stats.total).toBe(0);
  });

  it('drops a key sent in the query: not forwarded, not in the cache key', async () => {
    const p = await proxy({ REDIS_CLUSTER_NODES: `${fx.standalone.host}:${fx.standalone.port}` });
    await waitFor('L2', async () => (await json(fetch(`${p.url}/ready`))).l2 === 'ok');
    const res = await fetch(`${p.url}/api/v3/simple/price?x_cg_demo_api_key=theirs&ids=ripple`);
    expect(res.status).toBe(200);
    expect(fx.upstream.stats.lastQuery[PRICE]).toBe('ids=ripple');
    expect(fx.upstream.stats.lastAuth).toBe('header');
    expect(await fx.standalone.client().keys('tc:crypto:prices:v3*')).toEqual([
      'tc:crypto:prices:v3/simple/price?ids=ripple',
    ]);
  });
});
