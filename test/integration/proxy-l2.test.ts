/**
 * The proxy with a real L2: a 3-master Redis Cluster and a standalone Redis. Replicas share
 * entries through L2, clears reach every replica's L1 over pub/sub, and admin operations walk
 * every master without cross-slot commands.
 */
import { describe, expect, it } from 'vitest';
import { cacheKey, leaseKey } from '../../proxy/cache/keys.ts';
import { startDelayProxy } from '../helpers/delay-proxy.ts';
import { json } from '../helpers/json.ts';
import { useL2Fixture } from '../helpers/l2-fixture.ts';
import { type RunningProxy, rawRequest, startProxy } from '../helpers/proxy.ts';
import type { RedisNode } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

const API_KEY = 'f00dfeedf00dfeedf00dfeedf00dfeed';
const ADMIN = 'l2-admin-token';
const auth = { authorization: `Bearer ${ADMIN}` };

const fx = useL2Fixture(API_KEY);

async function replica(nodes: string, env: Record<string, string> = {}): Promise<RunningProxy> {
  const p = await startProxy({
    TMDB_API_URL: fx.upstream.url,
    TMDB_API_KEY: API_KEY,
    ADMIN_TOKEN: ADMIN,
    REDIS_CLUSTER_NODES: nodes,
    ...env,
  });
  fx.proxies.push(p);
  // Connected, and its breaker closed (a slow first connect on a busy machine opens it).
  await waitFor(
    'L2 to be ready',
    () =>
      p.proxy.cache.l2?.targets[0]?.kind !== undefined &&
      p.proxy.cache.l2.masters().length > 0 &&
      p.proxy.cache.l2.active() !== undefined,
  );
  return p;
}

/** Every key on every master (SCAN, per node). */
async function allKeys(nodes: RedisNode[]): Promise<string[]> {
  const keys: string[] = [];
  for (const n of nodes) {
    const c = n.client();
    let cursor = '0';
    do {
      const [next, batch] = await c.scan(cursor, 'COUNT', 1000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
  }
  return keys;
}

describe('L2 on a 3-master Redis Cluster', () => {
  it("serves another replica's entry from L2, then from its own L1", async () => {
    const a = await replica(fx.cluster.spec, { REGION: 'ap-southeast-1' });
    const b = await replica(fx.cluster.spec, { REGION: 'eu-west-1' });
    const first = await fetch(`${a.url}/3/movie/100`);
    expect(first.headers.get('x-cache')).toBe('MISS');
    const fromL2 = await fetch(`${b.url}/3/movie/100`);
    expect(fromL2.headers.get('x-cache')).toBe('L2');
    expect(fromL2.headers.get('cache-status')).toMatch(/^tiercache; hit; ttl=\d+; detail=l2$/);
    const body = Buffer.from(await first.arrayBuffer());
    expect(Buffer.from(await fromL2.arrayBuffer())).toEqual(body);
    expect((await fetch(`${b.url}/3/movie/100`)).headers.get('x-cache')).toBe('L1');
    expect(fx.upstream.stats.byPath['/3/movie/100']).toBe(1);
    // Stored deflated (L2_COMPRESSION=deflate): a JSON body takes a fraction of its size.
    const key = cacheKey('tmdb', '/3/movie/100');
    const value = await (await fx.cluster.masterOf(key)).client().getBuffer(key);
    expect(value!.length).toBeLessThan(body.length / 2);
  });

  it('stores bodies as they are with L2_COMPRESSION=off, and either kind is read by every replica', async () => {
    const plain = await replica(fx.cluster.spec, { L2_COMPRESSION: 'off' });
    const deflating = await replica(fx.cluster.spec);
    const body = Buffer.from(await (await fetch(`${plain.url}/3/movie/101`)).arrayBuffer());
    const key = cacheKey('tmdb', '/3/movie/101');
    const node = (await fx.cluster.masterOf(key)).client();
    await waitFor('the entry in L2', async () => (await node.exists(key)) === 1);
    expect((await node.getBuffer(key))!.length).toBeGreaterThan(body.length);
    const res = await fetch(`${deflating.url}/3/movie/101`);
    expect(res.headers.get('x-cache')).toBe('L2');
    expect(Buffer.from(await res.arrayBuffer())).toEqual(body);
  });

  it('one upstream call for a fetch slower than the lease: the holder renews it, the others wait', async () => {
    // A 1 s lease and a 2.5 s upstream (within its 5 s timeout).
    const env = { COALESCE_LEASE: '1', UPSTREAM_TIMEOUT: '5' };
    const a = await replica(fx.cluster.spec, env);
    const b = await replica(fx.cluster.spec, env);
    fx.upstream.control.delayMs = 2500;
    const path = '/3/movie/7500';
    const first = fetch(`${a.url}${path}`);
    const lease = leaseKey(cacheKey('tmdb', path));
    const leaseMaster = (await fx.cluster.masterOf(lease)).client();
    await waitFor('a to hold the lease', async () => (await leaseMaster.exists(lease)) === 1);
    const second = fetch(`${b.url}${path}`);
    const [fromA, fromB] = await Promise.all([first, second]);
    expect(fromA.headers.get('x-cache')).toBe('MISS');
    expect(fromB.headers.get('x-cache')).toBe('L2');
    expect(fromB.headers.get('cache-status')).toMatch(/collapsed/);
    expect(fx.upstream.stats.byPath[path]).toBe(1);
  });

  it('looks for an entry and takes its lease in one step: the lease lives in the entry’s slot', async () => {
    const key = cacheKey('tmdb', '/3/movie/8100');
    const node = (await fx.cluster.masterOf(key)).client();
    expect(await node.call('CLUSTER', 'KEYSLOT', leaseKey(key))).toBe(
      await node.call('CLUSTER', 'KEYSLOT', key),
    );
  });

  it('a key with braces of its own (its lease elsewhere): serves an entry another replica stored between its L2 look and its lease', async () => {
    const a = await replica(fx.cluster.spec, { REGION: 'ap-southeast-1' });
    // B's lease write is held by a pause for as long as the test needs: on a busy machine its
    // default 3 s write timeout could end the wait before the test sees it blocked.
    const b = await replica(fx.cluster.spec, { REGION: 'eu-west-1', REDIS_WRITE_TIMEOUT: '15' });
    // A path whose entry and lease live on different masters, so the lease's master can hold
    // B's lease write while the entry's master takes A's store. Only keys with braces (which
    // would change their hash slot) have their lease elsewhere; the empty `{}` tag keeps
    // Redis hashing the whole key.
    const pathOf = (id: number) => `/3/movie/{}${id}`;
    const keyOf = (id: number) => cacheKey('tmdb', pathOf(id));
    let id = 7000;
    while (
      (await fx.cluster.masterOf(keyOf(id))) === (await fx.cluster.masterOf(leaseKey(keyOf(id))))
    )
      id += 1;
    const path = pathOf(id);
    const key = keyOf(id);
    const leaseMaster = (await fx.cluster.masterOf(leaseKey(key))).client();
    const blocked = async () =>
      Number(/blocked_clients:(\d+)/.exec(await leaseMaster.info('clients'))?.[1]);

    await leaseMaster.call('CLIENT', 'PAUSE', '10000', 'WRITE');
    try {
      const answer = rawRequest(b.url, path);
      // B has looked in L2 (nothing there) and is now waiting to take the lease.
      await waitFor("B's lease write held by the pause", async () => (await blocked()) === 1);
      const now = Date.now();
      const body = Buffer.from(JSON.stringify({ id, title: 'stored by the other replica' }));
      await a.proxy.cache.l2!.set(
        key,
        {
          status: 200,
          contentType: 'application/json',
          body,
          storedAt: now,
          expiresAt: now + 60_000,
          staleUntil: now + 120_000,
        },
        120_000,
      );
      await leaseMaster.call('CLIENT', 'UNPAUSE');
      const res = await answer;
      expect(res.headers['x-cache']).toBe('L2');
      expect(res.body).toEqual(body);
      expect(fx.upstream.stats.byPath[path]).toBeUndefined();
    } finally {
      await leaseMaster.call('CLIENT', 'UNPAUSE');
    }
  });

  it('keeps images binary-safe through Redis', async () => {
    const a = await replica(fx.cluster.spec);
    const b = await replica(fx.cluster.spec);
    const original = Buffer.from(
      await (await fetch(`${a.url}/t/p/original/still.png`)).arrayBuffer(),
    );
    const res = await fetch(`${b.url}/t/p/original/still.png`);
    expect(res.headers.get('x-cache')).toBe('L2');
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(Buffer.from(await res.arrayBuffer()).equals(original)).toBe(true);
  });

  it('keeps an image over L2_MAX_ENTRY_BYTES in L1 only, and smaller ones in L2', async () => {
    const a = await replica(fx.cluster.spec, { L2_MAX_ENTRY_BYTES: '0.5' }); // 512 KiB
    fx.upstream.control.imageBytes = 2 ** 20;
    const big = await fetch(`${a.url}/t/p/original/big.jpg`);
    expect(big.status).toBe(200);
    expect((await big.arrayBuffer()).byteLength).toBe(2 ** 20);
    const again = await fetch(`${a.url}/t/p/original/big.jpg`);
    expect(again.headers.get('x-cache')).toBe('L1');
    expect((await again.arrayBuffer()).byteLength).toBe(2 ** 20);
    fx.upstream.control.imageBytes = undefined;
    await (await fetch(`${a.url}/t/p/w92/small.jpg`)).arrayBuffer();
    const stored = await allKeys(fx.cluster.nodes);
    expect(stored).toContain('tc:tmdb:/t/p/w92/small.jpg');
    expect(stored).not.toContain('tc:tmdb:/t/p/original/big.jpg');
  });

  it('never puts the API key into a Redis key or value', async () => {
    const a = await replica(fx.cluster.spec);
    await fetch(`${a.url}/3/movie/101?api_key=${API_KEY}&language=fr`);
    await fetch(`${a.url}/3/search/movie?query=heat`);
    const keys = await allKeys(fx.cluster.nodes);
    expect(keys.length, a.logs().slice(-3000)).toBeGreaterThanOrEqual(2);
    for (const key of keys) {
      expect(key).not.toContain(API_KEY);
      const value = await fx.cluster.nodes[0]!.client()
        .call('GET', key)
        .catch(() => null); // MOVED on other nodes: fine
      if (typeof value === 'string') expect(value).not.toContain(API_KEY);
    }
    expect(keys).toContain('tc:tmdb:/3/movie/101?language=fr');
  });

  it('clears every replica’s L1 over pub/sub', async () => {
    const a = await replica(fx.cluster.spec);
    const b = await replica(fx.cluster.spec);
    await fetch(`${a.url}/3/movie/102`);
    await fetch(`${b.url}/3/movie/102`);
    expect(b.proxy.cache.l1.stats().entries).toBe(1);
    // The bus subscriber attaches shortly after L2 connects.
    await waitFor('b to listen on the bus', () => b.proxy.bus!.subscribed > 0);
    const res = await fetch(`${a.url}/cache/clear?type=memory`, { method: 'POST', headers: auth });
    expect(await json(res)).toMatchObject({ memory_cleared: 1, replicas_notified: true });
    await waitFor('the clear to reach b', () => b.proxy.cache.l1.stats().entries === 0);
    expect((await fetch(`${b.url}/3/movie/102`)).headers.get('x-cache')).toBe('L2');
  });

  it('invalidates one key in L2 and in every replica’s L1', async () => {
    const a = await replica(fx.cluster.spec);
    const b = await replica(fx.cluster.spec);
    await fetch(`${a.url}/3/movie/103`);
    await fetch(`${b.url}/3/movie/103`);
    await waitFor('b to listen on the bus', () => b.proxy.bus!.subscribed > 0);
    const res = await fetch(
      `${a.url}/cache/invalidate?key=${encodeURIComponent('tmdb:/3/movie/103')}`,
      { method: 'POST', headers: auth },
    );
    expect(res.status).toBe(200);
    await waitFor('the invalidation to reach b', () => b.proxy.cache.l1.stats().entries === 0);
    expect((await fetch(`${b.url}/3/movie/103`)).headers.get('x-cache')).toBe('MISS');
  });

  it('lists, searches and clears L2 on every master, with keys spread over all of them', async () => {
    const a = await replica(fx.cluster.spec);
    await Promise.all(Array.from({ length: 60 }, (_, i) => fetch(`${a.url}/3/movie/${200 + i}`)));
    const perNode = await Promise.all(fx.cluster.nodes.map((n) => n.client().dbsize()));
    // A write L2 refused shows in the replica's log (a timeout, the breaker).
    expect(
      perNode.reduce((a, b) => a + b, 0),
      a.logs().slice(-3000),
    ).toBe(60);
    expect(perNode.every((n) => n > 0)).toBe(true);

    a.proxy.cache.clearMemory();
    const listed = await json(fetch(`${a.url}/cache/keys?limit=100`, { headers: auth }));
    expect(listed.keys).toHaveLength(60);
    expect(listed.keys.every((k: { tiers: string[] }) => k.tiers.includes('l2'))).toBe(true);
    const found = await json(fetch(`${a.url}/cache/search?q=/3/movie/25`, { headers: auth }));
    expect(found.keys.map((k: { key: string }) => k.key).sort()).toEqual(
      Array.from({ length: 10 }, (_, i) => `tmdb:/3/movie/${250 + i}`).sort(),
    );

    const info = await json(fetch(`${a.url}/cache/info`, { headers: auth }));
    expect(info.l2_cache).toMatchObject({ type: 'redis-cluster', masters: 3, current_size: 60 });
    expect(info.l2_cache.total_size).toBeGreaterThan(0);

    const cleared = await json(
      fetch(`${a.url}/cache/clear?type=l2`, { method: 'POST', headers: auth }),
    );
    expect(cleared.l2_cleared).toBe(60);
    expect(await allKeys(fx.cluster.nodes)).toEqual([]);
  });
  it('pages over both tiers with a cursor: every key once, no page over its limit', async () => {
    const a = await replica(fx.cluster.spec);
    const ids = Array.from({ length: 1200 }, (_, i) => 1000 + i);
    for (let i = 0; i < ids.length; i += 50)
      await Promise.all(ids.slice(i, i + 50).map((id) => fetch(`${a.url}/3/movie/${id}`)));
    // 100 entries only in L1 (deleted from L2 on their master), 100 only in L2.
    const key = (id: number) => cacheKey('tmdb', `/3/movie/${id}`);
    // Only the master owning the slot has it; the others answer MOVED.
    for (const id of ids.slice(0, 100))
      await Promise.all(
        fx.cluster.nodes.map((n) =>
          n
            .client()
            .unlink(key(id))
            .catch(() => 0),
        ),
      );
    for (const id of ids.slice(100, 200)) a.proxy.cache.l1.delete(key(id));

    const seen = new Map<string, string>();
    let cursor: string | null = null;
    let pages = 0;
    do {
      const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const page = await json(fetch(`${a.url}/cache/keys?limit=250${q}`, { headers: auth }));
      expect(page.keys.length).toBeLessThanOrEqual(250);
      for (const k of page.keys as { key: string; tiers: string[] }[]) {
        expect(seen.has(k.key), k.key).toBe(false);
        seen.set(k.key, k.tiers.join('+'));
      }
      expect(page.has_more).toBe(page.cursor !== null);
      cursor = page.cursor;
      pages += 1;
    } while (cursor && pages < 20);
    expect(seen.size).toBe(1200);
    const tiersOf = (id: number) => seen.get(`tmdb:/3/movie/${id}`);
    expect(
      ids
        .slice(0, 100)
        .map(tiersOf)
        .every((t) => t === 'l1'),
    ).toBe(true);
    expect(
      ids
        .slice(100, 200)
        .map(tiersOf)
        .every((t) => t === 'l2'),
    ).toBe(true);
    expect(
      ids
        .slice(200)
        .map(tiersOf)
        .every((t) => t === 'l1+l2'),
    ).toBe(true);

    // Search pages the same way: the 111 keys containing /3/movie/1 1xx… of 1000–2199.
    const found: string[] = [];
    cursor = null;
    do {
      const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const page = await json(
        fetch(`${a.url}/cache/search?q=/3/movie/11&limit=40${q}`, { headers: auth }),
      );
      expect(page.count).toBeLessThanOrEqual(40);
      found.push(...page.keys.map((k: { key: string }) => k.key));
      cursor = page.cursor;
    } while (cursor);
    const expected = ids
      .filter((id) => String(id).startsWith('11'))
      .map((id) => `tmdb:/3/movie/${id}`);
    expect(found.sort()).toEqual(expected.sort());

    const bad = await fetch(`${a.url}/cache/keys?cursor=not-a-cursor`, { headers: auth });
    expect(bad.status).toBe(400);
    expect((await json(bad)).message).toContain('cursor');
  });
});

describe('a TMDB user’s own requests', () => {
  it('pass through with the session, and never reach a key, a log line or L2', async () => {
    const a = await replica(fx.cluster.spec);
    const SESSION = 'f3ss10nf3ss10nf3ss10nf3ss10n0001';
    const account = `/3/account/42?session_id=${SESSION}`;
    const first = await fetch(`${a.url}${account}`);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-cache')).toBe('BYPASS');
    expect(first.headers.get('cache-control')).toBe('private, no-store');
    const body = await json(first);
    expect(body.username).toMatch(/^user-/);
    // The session reached TMDB; a second request asks TMDB again (nothing was kept).
    expect(fx.upstream.stats.lastQuery['/3/account/42']).toContain(`session_id=${SESSION}`);
    await fetch(`${a.url}${account}`);
    expect(fx.upstream.stats.byPath['/3/account/42']).toBe(2);
    // The auth flow: a new request token every time.
    const tokens = await Promise.all(
      [1, 2].map(
        async () => (await json(fetch(`${a.url}/3/authentication/token/new`))).request_token,
      ),
    );
    expect(tokens[0]).not.toBe(tokens[1]);
    // Any request with a session, whatever the path; without one the same path is cached.
    await fetch(`${a.url}/3/movie/77?guest_session_id=${SESSION}`);
    expect(
      (await fetch(`${a.url}/3/movie/77?guest_session_id=${SESSION}`)).headers.get('x-cache'),
    ).toBe('BYPASS');
    await fetch(`${a.url}/3/movie/77`);
    expect((await fetch(`${a.url}/3/movie/77`)).headers.get('x-cache')).toBe('L1');
    // A failing upstream is logged: with the session redacted.
    fx.upstream.control.failStatus = 500;
    expect((await fetch(`${a.url}/3/account/42?session_id=${SESSION}`)).status).toBe(500);
    fx.upstream.control.failStatus = undefined;

    const stored = await allKeys(fx.cluster.nodes);
    expect(stored.filter((k) => /account|authentication|session/.test(k))).toEqual([]);
    const listed = await (await fetch(`${a.url}/cache/keys?limit=1000`, { headers: auth })).text();
    for (const seen of [listed, stored.join(' '), a.logs()]) expect(seen).not.toContain(SESSION);
    expect(a.logs()).toContain('session_id=%5Bredacted%5D');
  });
});

describe('L2 on a standalone Redis', () => {
  it('detects standalone mode and shares entries', async () => {
    const spec = `${fx.standalone.host}:${fx.standalone.port}`;
    const a = await replica(spec);
    const b = await replica(spec);
    expect(a.proxy.cache.l2!.targets[0]!.kind).toBe('standalone');
    await fetch(`${a.url}/3/movie/300`);
    expect((await fetch(`${b.url}/3/movie/300`)).headers.get('x-cache')).toBe('L2');
    expect(await fx.standalone.client().exists('tc:tmdb:/3/movie/300')).toBe(1);
  });
});

describe('one sick master', () => {
  it('closes L2 for its own slots only: the other shards keep answering from L2', async () => {
    const p = await replica(fx.cluster.spec, {
      JSON_MEMORY_TTL: '0', // every request asks L2
      REDIS_READ_TIMEOUT: '0.3',
      REDIS_WRITE_TIMEOUT: '0.3',
      REDIS_BREAKER_FAILURES: '2',
      REDIS_BREAKER_COOLDOWN: '60',
    });
    const ids = Array.from({ length: 30 }, (_, i) => 9100 + i);
    for (const id of ids) await (await fetch(`${p.url}/3/movie/${id}`)).arrayBuffer();
    const sick = fx.cluster.nodes[0]!;
    const onSick: number[] = [];
    const elsewhere: number[] = [];
    for (const id of ids) {
      const key = cacheKey('tmdb', `/3/movie/${id}`);
      const master = await fx.cluster.masterOf(key);
      await waitFor(`${key} in L2`, async () => (await master.client().exists(key)) === 1);
      (master === sick ? onSick : elsewhere).push(id);
    }
    expect(onSick.length).toBeGreaterThan(2);
    expect(elsewhere.length).toBeGreaterThan(2);
    const target = p.proxy.cache.l2!.targets[0]!;
    const sickNode = `${sick.host}:${sick.port}`;
    sick.pause();
    try {
      // Its keys are answered without it (from upstream) until its breaker opens …
      for (const id of onSick) expect((await fetch(`${p.url}/3/movie/${id}`)).status).toBe(200);
      expect(target.nodeBreakerStates()[sickNode]).toBe('open');
      // … while every other master still serves its keys from L2.
      for (const id of elsewhere) {
        const res = await fetch(`${p.url}/3/movie/${id}`);
        expect(res.headers.get('x-cache'), `movie ${id}`).toBe('L2');
      }
      const others = Object.entries(target.nodeBreakerStates()).filter(([n]) => n !== sickNode);
      expect(others.length).toBeGreaterThan(0);
      expect(others.every(([, state]) => state === 'closed')).toBe(true);
      expect(p.proxy.cache.l2!.active()).toBe(target);
    } finally {
      sick.resume();
    }
  });
});

describe('Redis a few milliseconds away', () => {
  it('looks and takes the lease in one step: two replicas’ misses make one upstream call', async () => {
    const relay = await startDelayProxy(fx.standalone, 5); // a 10 ms round trip
    try {
      const far = `127.0.0.1:${relay.port}`;
      const env = { REDIS_MODE: 'standalone', UPSTREAM_TIMEOUT: '5' };
      const a = await replica(far, env);
      const b = await replica(far, env);
      const key = cacheKey('tmdb', '/3/movie/8200');
      for (const p of [a, b])
        await waitFor('the Redis latency to be measured', () =>
          p.proxy.cache.l2!.looksAndLeasesAtOnce(key),
        );
      fx.upstream.control.delayMs = 500;
      const first = fetch(`${a.url}/3/movie/8200`);
      // A's look found nothing and took the lease in the same script.
      await waitFor(
        'A to hold the lease',
        async () => (await fx.standalone.client().exists(leaseKey(key))) === 1,
      );
      const second = fetch(`${b.url}/3/movie/8200`);
      const [fromA, fromB] = await Promise.all([first, second]);
      expect(fromA.headers.get('x-cache')).toBe('MISS');
      expect(fromB.headers.get('x-cache')).toBe('L2');
      expect(fx.upstream.stats.byPath['/3/movie/8200']).toBe(1);
      // Let go once the answer was in L2.
      await waitFor(
        'the lease to be let go',
        async () => (await fx.standalone.client().exists(leaseKey(key))) === 0,
      );
    } finally {
      await relay.close();
    }
  });
});
