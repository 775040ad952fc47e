/**
 * The Redis Cluster manager against real redis-server processes: create and check, fix of open
 * slots, add-shard / remove-shard / rebalance with keys present and a client working
 * throughout, and a rebalance killed half way and run again.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Cluster } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { checkCluster } from '../../operator/redis/check.ts';
import { Connections } from '../../operator/redis/connections.ts';
import { createCluster } from '../../operator/redis/create.ts';
import { observe } from '../../operator/redis/observe.ts';
import { addShard, removeShard } from '../../operator/redis/reshard.ts';
import { runCli } from '../helpers/proxy.ts';
import { type RedisNode, startNodes } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function nodes(count: number, host = '127.0.0.1'): Promise<RedisNode[]> {
  const list = await startNodes(count, { cluster: true, host });
  cleanups.push(() => Promise.all(list.map((n) => n.stop())).then(() => undefined));
  return list;
}
const addr = (n: RedisNode) => `${n.host}:${n.port}`;

function connections(): Connections {
  const c = new Connections({ timeoutMs: 5000 });
  cleanups.push(() => c.close());
  return c;
}

/** Auto-pipelining for bulk loads only: ioredis fails auto-pipelined commands that meet MOVED/ASK. */
function clusterClient(seed: RedisNode, enableAutoPipelining = false): Cluster {
  const c = new Cluster([{ host: seed.host, port: seed.port }], { enableAutoPipelining });
  c.on('error', () => {});
  cleanups.push(() => c.disconnect());
  return c;
}

async function fill(client: Cluster, count: number, prefix = 'k'): Promise<void> {
  for (let i = 0; i < count; i += 5000) {
    await Promise.all(
      Array.from({ length: Math.min(5000, count - i) }, (_, j) =>
        client.set(`${prefix}:${i + j}`, `value-${i + j}`),
      ),
    );
  }
}

async function missing(client: Cluster, count: number, prefix = 'k'): Promise<number> {
  let lost = 0;
  for (let i = 0; i < count; i += 5000) {
    const values = await Promise.all(
      Array.from({ length: Math.min(5000, count - i) }, (_, j) => client.get(`${prefix}:${i + j}`)),
    );
    values.forEach((v, j) => {
      if (v !== `value-${i + j}`) lost += 1;
    });
  }
  return lost;
}

/** A client writing new keys and reading old ones until stopped; counts failed operations. */
function workload(client: Cluster, existing: number) {
  let running = true;
  let ops = 0;
  let failures = 0;
  let written = 0;
  const errors = new Map<string, number>();
  const note = (what: string) => errors.set(what, (errors.get(what) ?? 0) + 1);
  const loops = Array.from({ length: 10 }, async () => {
    while (running) {
      try {
        const n = written++;
        await client.set(`w:${n}`, `value-${n}`);
        const j = Math.floor(Math.random() * existing);
        const got = await client.get(`k:${j}`);
        if (got !== `value-${j}`) {
          failures += 1;
          note(`read k:${j} gave ${got}`);
        }
        ops += 2;
      } catch (err) {
        failures += 1;
        note((err as Error).message.replace(/\d+/g, 'N'));
      }
    }
  });
  return {
    ops: () => ops,
    async stop() {
      running = false;
      await Promise.all(loops);
      return { ops, failures, written, errors: Object.fromEntries([...errors].slice(0, 10)) };
    },
  };
}

/** Opens the slot of `tag` as a migration in progress: IMPORTING on another master, MIGRATING on its owner. */
async function openSlot(conns: Connections, seed: RedisNode, tag: string) {
  const slot = Number(await seed.client().call('CLUSTER', 'KEYSLOT', tag));
  const known = [...(await observe(conns, [addr(seed)])).known.values()];
  const owner = known.find((n) => n.slots.some((r) => r.start <= slot && slot <= r.end))!;
  const target = known.find((n) => n.id !== owner.id)!;
  await conns.call(target.addr, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', owner.id);
  await conns.call(owner.addr, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id);
  return { slot, owner, target };
}

describe('tiercache cluster create and check', () => {
  it('forms 3 masters with a replica each, no replica on its master’s host', async () => {
    const list = [...(await nodes(3, '127.0.0.1')), ...(await nodes(3, '127.0.0.2'))];
    const created = await runCli(['cluster', 'create', ...list.map(addr), '--replicas', '1'], {});
    expect(created.code).toBe(0);
    expect(created.output).toContain('cluster created: 3 masters, 3 replicas');

    const checked = await runCli(['cluster', 'check', addr(list[0]!), '--json'], {});
    expect(checked.code).toBe(0);
    const result = JSON.parse(checked.output.slice(checked.output.indexOf('{')));
    expect(result.healthy).toBe(true);
    expect(result.shards).toHaveLength(3);
    for (const shard of result.shards) {
      expect(shard.replicas).toHaveLength(1);
      expect(shard.replicas[0].addr.split(':')[0]).not.toBe(shard.addr.split(':')[0]);
    }
  });

  it('refuses to create over a node that is not empty, and check says why a cluster is unhealthy', async () => {
    const list = await nodes(3);
    await list[0]!.client().call('CLUSTER', 'ADDSLOTS', '0');
    const refused = await runCli(['cluster', 'create', ...list.map(addr)], {});
    expect(refused.code).not.toBe(0);
    expect(refused.output).toMatch(/not an empty node/);
    expect(await list[0]!.client().call('CLUSTER', 'COUNTKEYSINSLOT', '0')).toBe(0);

    const lonely = await runCli(['cluster', 'check', addr(list[0]!)], {});
    expect(lonely.code).toBe(1);
    expect(lonely.output).toMatch(/16383 slots are not covered/);
  });
});

describe('fix', () => {
  it('closes a slot left open mid-migration without losing a key', async () => {
    const list = await nodes(3);
    const conns = connections();
    await createCluster(conns, list.map(addr), { replicas: 0 });
    const client = clusterClient(list[0]!);
    const keys = Array.from({ length: 300 }, (_, i) => `{open}:${i}`);
    await Promise.all(keys.map((k) => client.set(k, k)));
    // What a manager killed half way leaves behind: both ends open, some keys moved.
    const { slot, owner, target } = await openSlot(conns, list[0]!, '{open}');
    const some = await conns.call<string[]>(owner.addr, 'CLUSTER', 'GETKEYSINSLOT', slot, 120);
    const [host, port] = target.addr.split(':');
    await conns.call(owner.addr, 'MIGRATE', host!, port!, '', 0, 5000, 'KEYS', ...some);

    const before = await runCli(['cluster', 'check', addr(list[0]!)], {});
    expect(before.code).toBe(1);
    expect(before.output).toMatch(/open slots/);

    const fixed = await runCli(['cluster', 'fix', addr(list[0]!)], {});
    expect(fixed.code).toBe(0);
    const after = checkCluster(await observe(conns, [addr(list[0]!)]));
    expect(after.problems).toEqual([]);
    const values = await Promise.all(keys.map((k) => client.get(k)));
    expect(values).toEqual(keys);
  });
});

describe('fix after a manager killed between the two SETSLOT NODE calls', () => {
  it('closes the migrating state the source kept for a slot its target already owns', async () => {
    const list = await nodes(3);
    const conns = connections();
    await createCluster(conns, list.map(addr), { replicas: 0 });
    const { slot, owner, target } = await openSlot(conns, list[0]!, '{half}');
    await conns.call(target.addr, 'CLUSTER', 'SETSLOT', slot, 'NODE', target.id); // the source never hears it
    await waitFor('the target to own the slot everywhere', async () => {
      const v = await observe(conns, [addr(list[0]!)]);
      return v.reports.every((r) =>
        r.nodes
          .find((n) => n.id === target.id)!
          .slots.some((x) => x.start <= slot && slot <= x.end),
      );
    });
    const before = checkCluster(await observe(conns, [addr(list[0]!)]));
    expect(before.openSlots.map((o) => o.node)).toContain(owner.addr);

    const fixed = await runCli(['cluster', 'fix', addr(list[0]!)], {});
    expect(fixed.code).toBe(0);
    expect(checkCluster(await observe(conns, [addr(list[0]!)])).problems).toEqual([]);
  });
});

describe('slot migration edge cases', () => {
  it('resolves BUSYKEY (the target already has the key) in favour of the source, and moves a big key', async () => {
    const list = await nodes(3);
    const conns = connections();
    await createCluster(conns, list.map(addr), { replicas: 0 });
    const client = clusterClient(list[0]!);
    const big = 'x'.repeat(32 * 1024 * 1024);
    await client.set('{edge}:big', big);
    await client.set('{edge}:dup', 'from-source');
    const { slot, target } = await openSlot(conns, list[0]!, '{edge}');
    // A stale copy on the target, as a client redirected with ASK could leave it.
    const direct = new Connections({ timeoutMs: 5000 });
    cleanups.push(() => direct.close());
    const t = direct.client(target.addr);
    await t.connect();
    await t.call('ASKING');
    await t.call('SET', '{edge}:dup', 'stale-on-target');

    const fixed = await runCli(['cluster', 'fix', addr(list[0]!), '--timeout', '30'], {});
    expect(fixed.code).toBe(0);
    expect(await client.get('{edge}:dup')).toBe('from-source');
    expect((await client.get('{edge}:big'))?.length).toBe(big.length);
    const afterView = await observe(conns, [addr(list[0]!)]);
    expect(checkCluster(afterView).problems).toEqual([]);
    const newOwner = afterView.known.get(target.id)!;
    expect(newOwner.slots.some((r) => r.start <= slot && slot <= r.end)).toBe(true);
  }, 120_000);
});

describe('add-shard, rebalance and remove-shard with keys and a working client', () => {
  it('moves 200k keys with zero lost and zero failed client operations', async () => {
    const list = await nodes(4);
    const conns = connections();
    await createCluster(conns, list.slice(0, 3).map(addr), { replicas: 0 });
    const client = clusterClient(list[0]!);
    const KEYS = 200_000;
    await fill(clusterClient(list[0]!, true), KEYS);
    const load = workload(client, KEYS);
    await waitFor('the client to be busy', () => load.ops() > 1000);

    const added = await addShard(
      conns,
      addr(list[0]!),
      { master: addr(list[3]!), replicas: [] },
      { rebalance: true },
    );
    expect(added!.slotsMoved).toBe(4096);
    let view = checkCluster(await observe(conns, [addr(list[0]!)]));
    expect(view.problems).toEqual([]);
    expect(view.shards.map((s) => s.slotCount)).toEqual([4096, 4096, 4096, 4096]);

    const removed = await removeShard(conns, addr(list[0]!), addr(list[1]!), {});
    expect(removed.slotsMoved).toBe(4096);
    const { ops, failures, written, errors } = await load.stop();
    expect(errors).toEqual({});
    view = checkCluster(await observe(conns, [addr(list[0]!)]));
    expect(view.problems).toEqual([]);
    expect(view.shards.map((s) => s.addr).sort()).toEqual(
      [list[0], list[2], list[3]].map((n) => addr(n!)).sort(),
    );
    expect(await list[1]!.client().dbsize()).toBe(0);

    expect(failures).toBe(0);
    expect(ops).toBeGreaterThan(1000);
    expect(await missing(client, KEYS)).toBe(0);
    expect(await missing(client, written, 'w')).toBe(0);
  }, 300_000);

  it('finishes a rebalance that was killed half way when run again', async () => {
    const list = await nodes(4);
    const conns = connections();
    await createCluster(conns, list.slice(0, 3).map(addr), { replicas: 0 });
    await fill(clusterClient(list[0]!, true), 50_000);
    const joined = await runCli(
      ['cluster', 'add-shard', addr(list[0]!), '--master', addr(list[3]!), '--no-rebalance'],
      {},
    );
    expect(joined.code).toBe(0);
    // Running add-shard again (as after a crash) takes the joined node as it is.
    const again = await runCli(
      ['cluster', 'add-shard', addr(list[0]!), '--master', addr(list[3]!), '--no-rebalance'],
      {},
    );
    expect(again.code).toBe(0);
    await waitFor('every node to know the new master', async () => {
      const v = await observe(conns, [addr(list[0]!)]);
      return v.reports.length === 4 && v.reports.every((r) => r.nodes.length === 4);
    });

    const cli = fileURLToPath(new URL('../../bin/tiercache.ts', import.meta.url));
    const first = spawn(
      process.execPath,
      [cli, 'cluster', 'rebalance', addr(list[0]!), '--concurrency', '2'],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let progress = '';
    first.stderr.on('data', (d) => {
      progress += d;
    });
    await waitFor(
      'the first rebalance to be under way',
      () => /moved ([1-9]\d*)\/4096/.test(progress),
      30_000,
    );
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));

    const second = await runCli(['cluster', 'rebalance', addr(list[0]!)], {});
    expect(second.code).toBe(0);
    const view = checkCluster(await observe(conns, [addr(list[0]!)]));
    expect(view.problems).toEqual([]);
    expect(view.shards.map((s) => s.slotCount)).toEqual([4096, 4096, 4096, 4096]);
    expect(await missing(clusterClient(list[0]!), 50_000)).toBe(0);
  }, 180_000);
});
