/**
 * Valkey 9's atomic slot migration (CLUSTER MIGRATESLOTS), found by feature detection, against
 * real valkey-server processes (hack/valkey.ts fetches the binary): add-shard with a rebalance
 * and remove-shard, with keys present and a client writing throughout. Redis 7 keeps MIGRATE
 * (cluster-manager.test.ts).
 */
import { Cluster } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { parseSlotJobs, supportsAtomicMigration } from '../../operator/redis/atomic-migrate.ts';
import { checkCluster } from '../../operator/redis/check.ts';
import { Connections } from '../../operator/redis/connections.ts';
import { createCluster } from '../../operator/redis/create.ts';
import { observe } from '../../operator/redis/observe.ts';
import { addShard, removeShard } from '../../operator/redis/reshard.ts';
import { fill, missing, type RedisNode, startNodes } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const addr = (n: RedisNode) => `${n.host}:${n.port}`;

async function start(count: number, server: 'redis' | 'valkey') {
  const list = await startNodes(count, { cluster: true, server });
  cleanups.push(() => Promise.all(list.map((n) => n.stop())).then(() => undefined));
  const conns = new Connections({ timeoutMs: 5000 });
  cleanups.push(() => conns.close());
  return { list, conns };
}

function clusterClient(seed: RedisNode, enableAutoPipelining = false): Cluster {
  const c = new Cluster([{ host: seed.host, port: seed.port }], { enableAutoPipelining });
  c.on('error', () => {});
  cleanups.push(() => c.disconnect());
  return c;
}

describe('atomic slot migration (Valkey 9)', () => {
  it('is detected on Valkey 9 and not on Redis 7', async () => {
    const valkey = await start(1, 'valkey');
    const redis = await start(1, 'redis');
    expect(await supportsAtomicMigration(valkey.conns, valkey.list.map(addr))).toBe(true);
    expect(await supportsAtomicMigration(redis.conns, redis.list.map(addr))).toBe(false);
  });

  it('adds and removes a shard with 50k keys and a writer: every slot moved by MIGRATESLOTS, none by MIGRATE; nothing lost', async () => {
    const { list, conns } = await start(4, 'valkey');
    await createCluster(conns, list.slice(0, 3).map(addr), { replicas: 0 });
    const KEYS = 50_000;
    await fill(clusterClient(list[0]!, true), KEYS);
    const client = clusterClient(list[0]!);
    let running = true;
    let written = 0;
    const failures: string[] = [];
    const writer = (async () => {
      while (running) {
        const n = written;
        try {
          await client.set(`w:${n}`, `value-${n}`);
          written += 1;
        } catch (err) {
          failures.push((err as Error).message);
        }
      }
    })();
    await waitFor('the writer to be writing', () => written > 500);

    const added = await addShard(
      conns,
      addr(list[0]!),
      { master: addr(list[3]!), replicas: [] },
      { rebalance: true },
    );
    expect(added!.slotsMoved).toBe(4096);
    expect(added!.keysMoved).toBeGreaterThan(KEYS / 5);
    let view = checkCluster(await observe(conns, [addr(list[0]!)]));
    expect(view.problems).toEqual([]);
    expect(view.shards.map((s) => s.slotCount)).toEqual([4096, 4096, 4096, 4096]);

    const removed = await removeShard(conns, addr(list[0]!), addr(list[1]!), {});
    expect(removed.slotsMoved).toBe(4096);
    running = false;
    await writer;
    view = checkCluster(await observe(conns, [addr(list[0]!)]));
    expect(view.problems).toEqual([]);
    expect(await list[1]!.client().dbsize()).toBe(0);

    // Every job the sources ran succeeded, and no key went by MIGRATE.
    for (const n of list.slice(0, 3)) {
      const jobs = parseSlotJobs(await conns.call(addr(n), 'CLUSTER', 'GETSLOTMIGRATIONS'));
      expect(jobs.filter((j) => j.operation === 'EXPORT').length, addr(n)).toBeGreaterThan(0);
      expect(
        jobs.filter((j) => j.state !== 'success'),
        addr(n),
      ).toEqual([]);
      expect(await conns.call<string>(addr(n), 'INFO', 'commandstats')).not.toMatch(
        /cmdstat_migrate:/,
      );
    }
    expect(failures).toEqual([]);
    expect(await missing(client, KEYS)).toBe(0);
    expect(await missing(client, written, 'w')).toBe(0);
  }, 180_000);
});
