/**
 * Healing with the cluster manager against real redis-server processes: a killed master is
 * replaced by Redis's own failover and `heal --spare` restores redundancy and forgets the dead
 * node for good; a full restart on new addresses is re-formed by `heal` with every key kept.
 */
import { Cluster } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { checkCluster } from '../../operator/redis/check.ts';
import { Connections } from '../../operator/redis/connections.ts';
import { createCluster } from '../../operator/redis/create.ts';
import { healCluster } from '../../operator/redis/heal.ts';
import { observe } from '../../operator/redis/observe.ts';
import { runCli } from '../helpers/proxy.ts';
import { type RedisNode, startNodes } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function nodes(count: number, persist = false): Promise<RedisNode[]> {
  const list = await startNodes(count, { cluster: true, persist });
  cleanups.push(() => Promise.all(list.map((n) => n.stop())).then(() => undefined));
  return list;
}
const addr = (n: RedisNode) => `${n.host}:${n.port}`;

function setup() {
  const conns = new Connections({ timeoutMs: 5000 });
  cleanups.push(() => conns.close());
  return conns;
}

function client(seed: RedisNode): Cluster {
  const c = new Cluster([{ host: seed.host, port: seed.port }], {
    clusterRetryStrategy: () => 100,
  });
  c.on('error', () => {});
  cleanups.push(() => c.disconnect());
  return c;
}

describe('tiercache cluster heal', () => {
  it('after a master is killed: failover by Redis, then a spare replica and the dead node forgotten for good', async () => {
    const [m0, m1, m2, r0, r1, r2, spare] = await nodes(7);
    const conns = setup();
    const six = [m0!, m1!, m2!, r0!, r1!, r2!];
    await createCluster(conns, six.map(addr), { replicas: 1 });
    const c = client(m1!);
    const deadId = await conns.call<string>(addr(m0!), 'CLUSTER', 'MYID');
    // A key that lives on m0: its slot is in m0's range.
    const view = await observe(conns, [addr(m1!)]);
    const range = view.known.get(deadId)!.slots[0]!;
    let key = '';
    for (let i = 0; ; i++) {
      const slot = Number(await conns.call(addr(m1!), 'CLUSTER', 'KEYSLOT', `k${i}`));
      if (slot >= range.start && slot <= range.end) {
        key = `k${i}`;
        break;
      }
    }
    await c.set(key, 'before');

    await m0!.kill();
    await waitFor(
      'writes to the dead master’s slots to succeed again',
      async () => (await c.set(key, 'after')) === 'OK',
      30_000,
      100,
    );

    const live = [m1!, m2!, r0!, r1!, r2!].map(addr);
    const healed = await runCli(
      ['cluster', 'heal', ...live, '--spare', addr(spare!), '--json'],
      {},
    );
    expect(healed.code).toBe(0);
    const result = JSON.parse(healed.output.slice(healed.output.indexOf('{')));
    expect(result.forgotten).toEqual([deadId]);
    expect(result.replicasAdded).toHaveLength(1);

    const knowsDead = async () =>
      (await observe(conns, live)).reports.some((r) => r.nodes.some((n) => n.id === deadId));
    await waitFor(
      'the cluster to be healthy',
      async () => checkCluster(await observe(conns, live)).healthy,
      30_000,
      250,
    );
    expect(await knowsDead()).toBe(false);
    const after = checkCluster(await observe(conns, live));
    expect(after.shards.every((s) => s.replicas.filter((r) => !r.failed).length === 1)).toBe(true);
    expect(await c.get(key)).toBe('after');

    // FORGET bans a node id for 60 s; a node that still knew the ghost would gossip it back after that.
    await new Promise((r) => setTimeout(r, 61_000));
    expect(await knowsDead()).toBe(false);
  }, 150_000);

  it('meets a node again whose MEETs were lost (it was paused just then), instead of waiting for it in vain', async () => {
    const list = await nodes(3, true);
    const conns = setup();
    await createCluster(conns, list.map(addr), { replicas: 0 });
    // Every node on a new port at once: none can find another by itself (one moved while the
    // others stay is found again from its own connections).
    await Promise.all(list.map((n) => n.moveToNewPort()));
    conns.close();
    const fresh = setup();
    const moved = list[2]!;
    let resumed: Promise<void> | undefined;
    const healed = await healCluster(fresh, list.map(addr), {
      timeoutMs: 20_000,
      log: (line) => {
        // The MEETs are sent; their handshakes with the moved node fail while it is paused
        // (longer than the 2 s handshake timeout), and Redis drops them without a word.
        if (!line.startsWith('introduced') || resumed) return;
        moved.pause();
        resumed = new Promise((r) => setTimeout(r, 4000)).then(() => moved.resume());
      },
    });
    await resumed;
    expect(healed.met).toBeGreaterThanOrEqual(6);
    await waitFor(
      'the cluster to be healthy at its new addresses',
      async () => checkCluster(await observe(fresh, list.map(addr))).healthy,
      30_000,
      250,
    );
  }, 60_000);

  it('re-forms a cluster whose nodes all restarted on new ports, with every key still there', async () => {
    const list = await nodes(3, true);
    const conns = setup();
    await createCluster(conns, list.map(addr), { replicas: 0 });
    const before = client(list[0]!);
    await Promise.all(Array.from({ length: 5000 }, (_, i) => before.set(`key:${i}`, `v${i}`)));
    before.disconnect();

    for (const n of list) await n.moveToNewPort();
    conns.close();
    const fresh = setup();
    const stale = checkCluster(await observe(fresh, list.map(addr)));
    expect(stale.healthy).toBe(false);

    const healed = await runCli(['cluster', 'heal', ...list.map(addr)], {});
    expect(healed.code).toBe(0);
    await waitFor(
      'the cluster to be healthy at its new addresses',
      async () => checkCluster(await observe(fresh, list.map(addr))).healthy,
      60_000,
      250,
    );
    const after = client(list[0]!);
    const values = await Promise.all(Array.from({ length: 5000 }, (_, i) => after.get(`key:${i}`)));
    expect(values.filter((v, i) => v !== `v${i}`)).toEqual([]);
  }, 120_000);
});
