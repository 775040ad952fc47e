/**
 * POST /cache/clear as its users rely on it, with two proxy replicas sharing a real 3-master
 * Redis Cluster: once it has answered (and the other replica got its messages), no replica
 * serves an entry from before the clear — also one that was refilled from L2 while L2 was
 * being cleared, and one that never got the message because it was cut off from Redis. The
 * fallback target is cleared too.
 */
import { describe, expect, it } from 'vitest';
import { ENTRY_PREFIX } from '../../proxy/cache/keys.ts';
import { json } from '../helpers/json.ts';
import { useL2Fixture } from '../helpers/l2-fixture.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';
import { waitFor } from '../helpers/wait.ts';

const API_KEY = 'c1ea4c1ea4c1ea4c1ea4c1ea4c1ea4c1';
const ADMIN = 'clear-admin-token';
const KEYS = 20_000;

const fx = useL2Fixture(API_KEY);

async function replica(env: Record<string, string> = {}): Promise<RunningProxy> {
  const p = await startProxy({
    TMDB_API_URL: fx.upstream.url,
    TMDB_API_KEY: API_KEY,
    ADMIN_TOKEN: ADMIN,
    REDIS_CLUSTER_NODES: fx.cluster.spec,
    // Room for every entry in L1: what a replica holds is decided by the clear, not by eviction.
    L1_MAX_BYTES: '256',
    ...env,
  });
  fx.proxies.push(p);
  await waitFor('L2 and the bus to be up', () => (p.proxy.bus?.subscribed ?? 0) > 0, 10_000);
  return p;
}

/** GETs every path with `concurrency` requests in flight; returns the answers' revisions. */
async function getAll(
  base: string,
  ids: number[],
  concurrency = 64,
): Promise<(number | undefined)[]> {
  const out: (number | undefined)[] = new Array(ids.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < ids.length) {
        const i = next++;
        const res = await fetch(`${base}/3/movie/${ids[i]}`);
        out[i] = ((await res.json()) as { revision?: number }).revision;
      }
    }),
  );
  return out;
}

const ids = Array.from({ length: KEYS }, (_, i) => i + 1);

describe('POST /cache/clear', () => {
  it('leaves no replica serving an entry from before it, with 20 000 keys and reads running on the other replica', async () => {
    const a = await replica();
    const b = await replica();
    fx.upstream.control.revision = 1;
    await getAll(a.url, ids); // upstream → L2 (and a's L1)
    await getAll(b.url, ids); // L2 → b's L1
    expect(b.proxy.cache.l1.stats().entries).toBe(KEYS);

    // From now on the upstream answers revision 2: a revision 1 after the clear is stale.
    fx.upstream.control.revision = 2;
    let reading = true;
    const reads = getAll(
      b.url,
      ids.filter((i) => i % 3 === 0),
      8,
    ).finally(() => {
      reading = false;
    });
    const applied = b.proxy.bus!.applied;
    const cleared = await json(
      fetch(`${a.url}/cache/clear`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}` },
      }),
    );
    expect(cleared).toMatchObject({ type: 'all', l2_cleared: KEYS, replicas_notified: true });
    expect(cleared.l2_failed).toBeUndefined();
    // b reads while L2 is cleared: it may refill its L1 from entries not yet deleted, which
    // the second message (sent once L2 is empty) clears again.
    await waitFor('b to get both messages', () => b.proxy.bus!.applied >= applied + 2, 10_000);
    expect(reading, 'the reads were still running when the clear ended').toBe(true);
    await reads;

    const after = await getAll(b.url, ids);
    const stale = after.filter((r) => r !== 2).length;
    expect(stale, 'answers from before the clear').toBe(0);
  }, 120_000);

  it('a replica that missed the message (cut off from Redis) flushes its L1 when it is back', async () => {
    const a = await replica();
    const b = await replica();
    await getAll(b.url, ids.slice(0, 100));
    expect(b.proxy.cache.l1.stats().entries).toBe(100);
    // What a clear leaves in Redis for a replica that was not listening: the generation moved,
    // no message. (a's bus moves it; nothing is published.)
    await a.proxy.cache.l2!.bumpClearGeneration();
    expect(b.proxy.cache.l1.stats().entries).toBe(100);
    // b's subscription drops and comes back, as after a network cut.
    await Promise.all(
      fx.cluster.nodes.map((n) => n.client().call('CLIENT', 'KILL', 'TYPE', 'pubsub')),
    );
    await waitFor('b to flush its L1 on reconnect', () => b.proxy.cache.l1.stats().entries === 0);
    expect(b.logs()).toContain('missed an invalidation while cut off from Redis: L1 flushed');
  });

  it('clears the fallback target too', async () => {
    const a = await replica({
      REDIS_FALLBACK_NODES: `${fx.standalone.host}:${fx.standalone.port}`,
    });
    await getAll(a.url, ids.slice(0, 30));
    // An entry kept on the fallback while the main nodes were away.
    await fx.standalone.client().set(`${ENTRY_PREFIX}tmdb:/3/movie/999`, 'x');
    const cleared = await json(
      fetch(`${a.url}/cache/clear?type=l2`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}` },
      }),
    );
    expect(cleared).toMatchObject({ l2_cleared: 31 });
    expect(await fx.standalone.client().keys(`${ENTRY_PREFIX}*`)).toEqual([]);
  });
});
