/**
 * The proxies' own ACL user (spec.redis.auth.users.proxies) against a real 3-master Redis
 * Cluster whose nodes got it from the operator's own ACL SETUSER: two proxies logged in as it do
 * everything a proxy does — misses, L2 hits across replicas, leases, images, crypto batches and
 * charts, rate limits counted in Redis, key listing and search, /cache/info and /cache/nodes,
 * clears and invalidations reaching the other replica — and no node refused any of it (ACL LOG
 * empty). The same credentials are refused FLUSHALL, CONFIG, CLUSTER changes, SCRIPT FLUSH, CLIENT KILL and any key
 * outside the proxies' prefixes.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROXY_USER } from '../../operator/resources/names.ts';
import { proxyUserSetuser } from '../../operator/resources/redis-config.ts';
import { type DemoUpstream, startDemoUpstream } from '../../proxy/upstreams/demo-server.ts';
import { json } from '../helpers/json.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { startCluster, type TestCluster } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

const API_KEY = 'ac1ac1ac1ac1ac1ac1ac1ac1ac1ac1ac';

const ADMIN = 'acl-admin-token';
const USER_PASSWORD = 'proxy-user-password-1';

let upstream: DemoUpstream;
let cluster: TestCluster;
const proxies: RunningProxy[] = [];

beforeAll(async () => {
  [upstream, cluster] = await Promise.all([
    startDemoUpstream({ apiKey: API_KEY }),
    startCluster(3),
  ]);
  const [command, ...args] = proxyUserSetuser(USER_PASSWORD);
  for (const node of cluster.nodes) await node.client().call(command!, ...args);
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(proxies.map((p) => p.close()));
  await Promise.all([upstream?.close(), cluster?.stop()]);
});

async function proxyAsUser(): Promise<RunningProxy> {
  const p = await startProxy({
    TMDB_API_URL: upstream.url,
    TMDB_API_KEY: API_KEY,
    CRYPTO_API_URL: `${upstream.url}/api/v3`,
    CRYPTO_API_KEY: API_KEY,
    ADMIN_TOKEN: ADMIN,
    REDIS_CLUSTER_NODES: cluster.spec,
    REDIS_USERNAME: PROXY_USER,
    REDIS_PASSWORD: USER_PASSWORD,
    RATE_LIMIT_TMDB: '1000/1m',
  });
  proxies.push(p);
  await waitFor('L2 and the bus to be up', () => (p.proxy.bus?.subscribed ?? 0) > 0, 10_000);
  return p;
}

const admin = { authorization: `Bearer ${ADMIN}` };

/** Every node's ACL LOG: what it refused (the command or key, and why), and to whom. */
async function refusals(): Promise<string[]> {
  const logs = await Promise.all(
    cluster.nodes.map((n) => n.client().call('ACL', 'LOG') as Promise<unknown[][]>),
  );
  return logs.flat().map((entry) => {
    const e: Record<string, unknown> = {};
    for (let i = 0; i + 1 < entry.length; i += 2) e[String(entry[i])] = entry[i + 1];
    return `${e.username}: ${e.reason} ${e.context} ${e.object}`;
  });
}

describe("the proxies' own ACL user", () => {
  it('is enough for everything a proxy does, and no node refuses any of it', async () => {
    const [a, b] = [await proxyAsUser(), await proxyAsUser()];
    await Promise.all(cluster.nodes.map((n) => n.client().call('ACL', 'LOG', 'RESET')));

    // A miss on one replica, then an L2 hit on the other; 20 concurrent misses make one call (the lease).
    const first = await fetch(`${a.url}/3/movie/603`);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-cache')).toBe('MISS');
    await waitFor('the fill to reach L2', async () => {
      const r = await fetch(`${b.url}/3/movie/603`);
      return r.headers.get('x-cache') === 'L2';
    });
    // A slow upstream, so the 20 are in flight together (the lease is what keeps them to one).
    upstream.control.delayMs = 300;
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => fetch(`${[a, b][i % 2]!.url}/3/movie/604`)),
    ).finally(() => {
      upstream.control.delayMs = 0;
    });
    expect(answers.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(await refusals()).toEqual([]);
    expect(upstream.stats.byPath['/3/movie/604']).toBe(1);

    expect((await fetch(`${a.url}/t/p/w500/poster.jpg`)).status).toBe(200);
    expect((await fetch(`${a.url}/api/latest_prices?symbols=btc,eth,sol`)).status).toBe(200);
    expect((await fetch(`${a.url}/api/chart_data?symbol=btc&days=7`)).status).toBe(200);

    // The admin side: info, nodes, keys, search, a clear of one prefix that reaches replica b.
    const info = await json(fetch(`${a.url}/cache/info`, { headers: admin }));
    expect(JSON.stringify(info)).not.toMatch(/NOPERM|unavailable/);
    expect((await fetch(`${a.url}/cache/nodes`, { headers: admin })).status).toBe(200);
    const keys = await json(fetch(`${a.url}/cache/keys?limit=100`, { headers: admin }));
    expect(JSON.stringify(keys)).toContain('/3/movie/603');
    expect((await fetch(`${a.url}/cache/search?q=movie`, { headers: admin })).status).toBe(200);
    expect(
      (await fetch(`${b.url}/3/movie/603`)).headers.get('x-cache'),
      'b holds it before the clear',
    ).toBe('L1');
    const cleared = await fetch(`${a.url}/cache/clear`, { method: 'POST', headers: admin });
    expect(cleared.status).toBe(200);
    expect((await fetch(`${b.url}/3/movie/603`)).headers.get('x-cache')).toBe('MISS');

    // Nothing was refused anywhere, and neither proxy logged a refusal.
    expect(await refusals()).toEqual([]);
    for (const p of [a, b]) expect(p.logs()).not.toMatch(/NOPERM|WRONGPASS/);
  });

  it('is refused FLUSHALL, CONFIG, CLUSTER changes, SCRIPT FLUSH, CLIENT KILL and keys outside its prefixes', async () => {
    const mine = 'tc:acl-test:own-key';
    const node = await cluster.masterOf(mine);
    const asProxy = new Redis({
      host: node.host,
      port: node.port,
      username: PROXY_USER,
      password: USER_PASSWORD,
      maxRetriesPerRequest: 0,
      lazyConnect: true,
    });
    try {
      await asProxy.connect();
      const refused = async (...args: (string | number)[]) => {
        const [command, ...rest] = args;
        await expect(asProxy.call(String(command), ...rest), args.join(' ')).rejects.toThrow(
          /NOPERM/,
        );
      };
      await refused('FLUSHALL');
      await refused('FLUSHDB');
      await refused('CONFIG', 'GET', 'requirepass');
      await refused('CONFIG', 'SET', 'maxmemory', '1');
      await refused('CLUSTER', 'RESET');
      await refused('CLUSTER', 'FORGET', 'x'.repeat(40));
      await refused('CLUSTER', 'FAILOVER');
      await refused('SCRIPT', 'FLUSH');
      await refused('CLIENT', 'KILL', 'TYPE', 'normal');
      await refused('SHUTDOWN');
      await refused('ACL', 'SETUSER', 'x', 'on');
      await refused('KEYS', '*');
      await refused('GET', 'someone-else:key');
      await refused('SET', 'session:1', 'x');
      // Its own keys are its to use.
      expect(await asProxy.call('SET', mine, 'v')).toBe('OK');
      expect(await asProxy.call('DEL', mine)).toBe(1);
    } finally {
      asProxy.disconnect();
    }
  });
});
