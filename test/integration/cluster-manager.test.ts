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
import { fill, missing, type RedisNode, startNodes } from '../helpers/redis.ts';
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

/** Three masters holding 50k keys and a fourth joined empty (add-shard --no-rebalance). */
async function withEmptyMaster(): Promise<{ list: RedisNode[]; conns: Connections }> {
  const list = await nodes(4);
  const conns = connections();
  await createCluster(conns, list.slice(0, 3).map(addr), { replicas: 0 });
  await fill(clusterClient(list[0]!, true), 50_000);
  const joined = await runCli(
    ['cluster', 'add-shard', addr(list[0]!), '--master', addr(list[3]!), '--no-rebalance'],
    {},
  );
  expect(joined.code).toBe(0);
  return { list, conns };
}

const everyNodeKnowsFour = (conns: Connections, seed: RedisNode) =>
  waitFor('every node to know the new master', async () => {
    const v = await observe(conns, [addr(seed)]);
    return v.reports.length === 4 && v.reports.every((r) => r.nodes.length === 4);
  });

/** `tiercache cluster rebalance` as a process of its own, once it has moved a slot. */
async function rebalanceUnderWay(seed: RedisNode, ...extra: string[]) {
  const cli = fileURLToPath(new URL('../../bin/tiercache.ts', import.meta.url));
  const proc = spawn(process.execPath, [cli, 'cluster', 'rebalance', addr(seed), ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let progress = '';
  proc.stderr.on('data', (d) => {
    progress += d;
  });
  await waitFor(
    'the rebalance to be under way',
    () => /moved ([1-9]\d*)\/4096/.test(progress),
    30_000,
  );
  return { proc, progress: () => progress };
}

/** Opens the slot of `tag` as a migration in progress: IMPORTING on another master, MIGRATING on its owner. */
async function openSlot(conns: Connections, seed: RedisNode, tag: string) {
  const slot = Number(await seed.client().call('CLUSTER', 'KEYSLOT', tag));
  const known = [...(await observe(conns, [addr(seed)])).known.values()];
  const owner = known.find((n) => n.slots.some((r) => r.start <= slot && slot <= r.end))!;
  const target = known.find((n) => n.id !== owner.id && n.slots.length > 0)!;
  await conns.call(target.addr, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', owner.id);
  await conns.call(owner.addr, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id);
  return { slot, owner, target };
}

/**
 * 300 keys of `tag` written, their slot opened as a migration, and 120 of them already moved
 * to the target: what a manager stopped half way through a slot leaves behind.
 */
async function halfMigrated(conns: Connections, seed: RedisNode, tag: string) {
  const client = clusterClient(seed);
  const keys = Array.from({ length: 300 }, (_, i) => `${tag}:${i}`);
  await Promise.all(keys.map((k) => client.set(k, k)));
  const open = await openSlot(conns, seed, tag);
  const some = await conns.call<string[]>(
    open.owner.addr,
    'CLUSTER',
    'GETKEYSINSLOT',
    open.slot,
    120,
  );
  const [host, port] = open.target.addr.split(':');
  await conns.call(open.owner.addr, 'MIGRATE', host!, port!, '', 0, 5000, 'KEYS', ...some);
  return { client, keys, ...open };
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
    const { client, keys } = await halfMigrated(conns, list[0]!, '{open}');

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

describe('fix after the source master died mid-migration', () => {
  it('finishes the move forward once the source’s replica took over and the source came back as its replica; no key lost', async () => {
    const list = [...(await nodes(3, '127.0.0.1')), ...(await nodes(3, '127.0.0.2'))];
    const conns = connections();
    await createCluster(conns, list.map(addr), { replicas: 1 });
    const { client, keys, slot, owner, target } = await halfMigrated(conns, list[0]!, '{died}');
    await conns.call(owner.addr, 'WAIT', 1, 2000); // its replica has the moved keys' deletions

    // The source dies; its replica takes over the slot (holding the 180 keys not yet moved);
    // the source comes back, empty, as that replica's replica.
    const replica = (await observe(conns, list.map(addr))).reports.find(
      (r) => r.nodes.find((n) => n.flags.has('myself'))?.masterId === owner.id,
    )!;
    const source = list.find((n) => addr(n) === owner.addr)!;
    await source.kill();
    await conns.call(replica.addr, 'CLUSTER', 'FAILOVER', 'TAKEOVER');
    await source.restart();
    // The target ignores news of the owner of a slot it imports, and drops the slots of a
    // master that turned replica: to it the slot is nobody's now.
    await waitFor('the target to see the slot as nobody’s', async () => {
      const v = await observe(conns, [target.addr]);
      const mine = v.reports.find((r) => r.id === target.id)!;
      return !mine.nodes.some(
        (n) => !n.flags.has('slave') && n.slots.some((x) => x.start <= slot && slot <= x.end),
      );
    });

    const fixed = await runCli(['cluster', 'fix', addr(list[1]!)], {});
    expect(fixed.output).toMatch(/finishing its migration/);
    expect(fixed.code).toBe(0);
    await waitFor('a healthy cluster', async () => {
      return checkCluster(await observe(conns, list.map(addr))).problems.length === 0;
    });
    expect(await Promise.all(keys.map((k) => client.get(k)))).toEqual(keys);
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

describe('a rebalance whose target refuses every key', () => {
  it('fails naming the cause and leaves no slot open: the slots in flight are closed again; nothing lost', async () => {
    const list = await nodes(4);
    const conns = connections();
    await createCluster(conns, list.slice(0, 3).map(addr), { replicas: 0 });
    await fill(clusterClient(list[0]!, true), 20_000);
    // The new master is out of memory for good: every RESTORE of a MIGRATE fails with OOM.
    await list[3]!.client().config('SET', 'maxmemory-policy', 'noeviction');
    await list[3]!.client().config('SET', 'maxmemory', '1');
    await expect(
      addShard(
        conns,
        addr(list[0]!),
        { master: addr(list[3]!), replicas: [] },
        { rebalance: true },
      ),
    ).rejects.toThrow(/OOM/);
    const view = checkCluster(await observe(conns, [addr(list[0]!)]));
    expect(view.openSlots).toEqual([]);
    expect(view.uncovered).toEqual([]);
    expect(await list[3]!.client().dbsize()).toBe(0);
    expect(await missing(clusterClient(list[0]!), 20_000)).toBe(0);
  }, 120_000);
});

describe('a rebalance with cached images of several MB', () => {
  it('moves 40 values of 5 MB in one slot, no MIGRATE call above 8 MiB, beside small keys and a working client; nothing lost', async () => {
    const list = await nodes(4);
    const conns = connections();
    await createCluster(conns, list.slice(0, 3).map(addr), { replicas: 0 });
    const client = clusterClient(list[0]!);
    await fill(clusterClient(list[0]!, true), 20_000);
    // One hash tag: the 40 images share a slot, so a batch chosen by key count alone would
    // be one MIGRATE call of 200 MB. Each master gives its highest slots to a new one: a tag
    // in the last few hundred slots is sure to move.
    let tag = '';
    let slot = 0;
    for (let i = 0; slot < 16_200; i++) {
      tag = `img${i}`;
      slot = Number(await list[0]!.client().call('CLUSTER', 'KEYSLOT', tag));
    }
    const IMAGES = 40;
    const image = (i: number) => Buffer.alloc(5 * 1024 * 1024, i + 1);
    for (let i = 0; i < IMAGES; i++) await client.set(`{${tag}}:${i}`, image(i));
    const source = [...(await observe(conns, [addr(list[0]!)])).known.values()].find((n) =>
      n.slots.some((r) => r.start <= slot && slot <= r.end),
    )!;
    // MONITOR on the source shows each MIGRATE call with its keys: how many images each took.
    const sourceNode = list.find((n) => addr(n) === source.addr)!;
    const monitor = await sourceNode.client().monitor();
    cleanups.push(() => monitor.disconnect());
    const imagesPerCall: number[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toUpperCase() !== 'MIGRATE') return;
      const images = args.filter((a) => a.startsWith(`{${tag}}:`)).length;
      if (images > 0) imagesPerCall.push(images);
    });
    const load = workload(client, 20_000);
    await waitFor('the client to be busy', () => load.ops() > 1000);

    const added = await addShard(
      conns,
      addr(list[0]!),
      { master: addr(list[3]!), replicas: [] },
      { rebalance: true },
    );
    expect(added!.slotsMoved).toBe(4096);
    const { failures, written, errors } = await load.stop();
    expect(errors).toEqual({});
    expect(failures).toBe(0);

    const after = await observe(conns, [addr(list[0]!)]);
    expect(checkCluster(after).problems).toEqual([]);
    const owner = [...after.known.values()].find((n) =>
      n.slots.some((r) => r.start <= slot && slot <= r.end),
    )!;
    expect(owner.addr).toBe(addr(list[3]!));
    for (let i = 0; i < IMAGES; i++)
      expect((await client.getBuffer(`{${tag}}:${i}`))?.equals(image(i)), `image ${i}`).toBe(true);
    expect(await missing(client, 20_000)).toBe(0);
    expect(await missing(client, written, 'w')).toBe(0);
    // Every image went in a call of its own (5 MB + 5 MB > 8 MiB), each once: none failed.
    expect(imagesPerCall).toEqual(Array.from({ length: IMAGES }, () => 1));
    const stats = await conns.call<string>(source.addr, 'INFO', 'commandstats');
    expect(stats).toMatch(/cmdstat_migrate:.*failed_calls=0/);
  }, 300_000);
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

  it('stopped by SIGTERM mid-rebalance, finishes the slots in flight and leaves none open; nothing lost', async () => {
    const { list, conns } = await withEmptyMaster();
    await everyNodeKnowsFour(conns, list[0]!);
    const run = await rebalanceUnderWay(list[0]!);
    run.proc.kill('SIGTERM');
    const code = await new Promise<number | null>((r) => run.proc.once('exit', r));
    expect(code).not.toBe(0);
    const progress = run.progress();
    expect(progress).toMatch(/stopped after \d+ of 4096 slots moved/);
    // Right after it stopped (nothing has repaired anything): no slot is open.
    const stopped = checkCluster(await observe(conns, [addr(list[0]!)]));
    expect(stopped.openSlots).toEqual([]);
    expect(stopped.uncovered).toEqual([]);
    const moved = Number(/stopped after (\d+) of/.exec(progress)![1]);
    expect(moved).toBeGreaterThan(0);
    expect(moved).toBeLessThan(4096);
    expect(await missing(clusterClient(list[0]!), 50_000)).toBe(0);

    // A run stopped near its end can leave every master within the default 2 % threshold, which
    // a plain rerun leaves as it is (as redis-cli does); --threshold 0 finishes the job exactly.
    const again = await runCli(['cluster', 'rebalance', addr(list[0]!), '--threshold', '0'], {});
    expect(again.code).toBe(0);
    const view = checkCluster(await observe(conns, [addr(list[0]!)]));
    expect(view.problems).toEqual([]);
    expect(view.shards.map((s) => s.slotCount)).toEqual([4096, 4096, 4096, 4096]);
    expect(await missing(clusterClient(list[0]!), 50_000)).toBe(0);
  }, 180_000);

  it('finishes a rebalance that was killed half way when run again', async () => {
    const { list, conns } = await withEmptyMaster();
    // Running add-shard again (as after a crash) takes the joined node as it is.
    const again = await runCli(
      ['cluster', 'add-shard', addr(list[0]!), '--master', addr(list[3]!), '--no-rebalance'],
      {},
    );
    expect(again.code).toBe(0);
    await everyNodeKnowsFour(conns, list[0]!);

    const first = await rebalanceUnderWay(list[0]!, '--concurrency', '2');
    first.proc.kill('SIGKILL');
    await new Promise((r) => first.proc.once('exit', r));

    const second = await runCli(['cluster', 'rebalance', addr(list[0]!)], {});
    expect(second.code).toBe(0);
    const view = checkCluster(await observe(conns, [addr(list[0]!)]));
    expect(view.problems).toEqual([]);
    expect(view.shards.map((s) => s.slotCount)).toEqual([4096, 4096, 4096, 4096]);
    expect(await missing(clusterClient(list[0]!), 50_000)).toBe(0);
  }, 180_000);
});
