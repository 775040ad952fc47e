/**
 * Cluster benchmark: two identical 3-master clusters holding 200k keys of 1 KB each get one
 * empty master added; one is rebalanced by `tiercache cluster rebalance`, the other by
 * `redis-cli --cluster rebalance --cluster-use-empty-masters`. Prints keys moved per second
 * for both (wall time of the whole command) and the ratio (target ≥ 2×), checks no key was
 * lost, then measures failover: kill a master of a 3+3 cluster (cluster-node-timeout 3000 ms)
 * and time until writes to its slots succeed again.
 *
 *   npm run bench:cluster      (BENCH_KEYS=200000, BENCH_VALUE_BYTES=1024)
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Cluster } from 'ioredis';
import { Connections } from '../operator/redis/connections.ts';
import { createCluster } from '../operator/redis/create.ts';
import { observe } from '../operator/redis/observe.ts';
import { type RedisNode, startRedis } from '../test/helpers/redis.ts';

const KEYS = Number(process.env.BENCH_KEYS ?? 200_000);
const VALUE = 'v'.repeat(Number(process.env.BENCH_VALUE_BYTES ?? 1024));
const CLI = fileURLToPath(new URL('../bin/tiercache.ts', import.meta.url));
const addr = (n: RedisNode) => `${n.host}:${n.port}`;
const all: RedisNode[] = [];

async function nodes(count: number): Promise<RedisNode[]> {
  const list = await Promise.all(
    Array.from({ length: count }, () => startRedis({ cluster: true })),
  );
  all.push(...list);
  return list;
}

async function keyCount(list: RedisNode[]): Promise<number> {
  let n = 0;
  for (const node of list) n += await node.client().dbsize();
  return n;
}

async function prepared(conns: Connections): Promise<{ list: RedisNode[]; empty: RedisNode }> {
  const list = await nodes(4);
  await createCluster(conns, list.slice(0, 3).map(addr), { replicas: 0 });
  const c = new Cluster([{ host: list[0]!.host, port: list[0]!.port }], {
    enableAutoPipelining: true,
  });
  for (let i = 0; i < KEYS; i += 2000) {
    await Promise.all(
      Array.from({ length: Math.min(2000, KEYS - i) }, (_, j) => c.set(`key:${i + j}`, VALUE)),
    );
  }
  c.disconnect();
  // Join the empty master without moving anything yet.
  const { host, port } = list[3]!;
  await conns.call(addr(list[0]!), 'CLUSTER', 'MEET', host, port);
  for (;;) {
    const view = await observe(conns, [addr(list[0]!)]);
    if (
      view.reports.length === 4 &&
      view.reports.every((r) => r.nodes.length === 4 && r.info.cluster_state === 'ok')
    )
      break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { list, empty: list[3]! };
}

function timed(cmd: string, args: string[]): number {
  const started = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
  return Number(process.hrtime.bigint() - started) / 1e9;
}

async function failoverSeconds(conns: Connections): Promise<number> {
  const list = await Promise.all(
    Array.from({ length: 6 }, async () => {
      const n = await startRedis({ cluster: true });
      await n.client().config('SET', 'cluster-node-timeout', '3000');
      return n;
    }),
  );
  all.push(...list);
  await createCluster(conns, list.map(addr), { replicas: 1 });
  const c = new Cluster([{ host: list[1]!.host, port: list[1]!.port }], {
    clusterRetryStrategy: () => 50,
    redisOptions: { maxRetriesPerRequest: 0 },
  });
  c.on('error', () => {});
  const key = 'failover-probe-{a}';
  await c.set(key, 'x');
  const slot = Number(await list[0]!.client().call('CLUSTER', 'KEYSLOT', key));
  const owner = (await observe(conns, [addr(list[1]!)])).reports.find((r) =>
    r.nodes.find((n) => n.flags.has('myself'))!.slots.some((s) => s.start <= slot && slot <= s.end),
  )!;
  const victim = list.find((n) => addr(n) === owner.addr)!;
  const started = Date.now();
  await victim.kill();
  for (;;) {
    try {
      if ((await c.set(key, 'y')) === 'OK') break;
    } catch {
      // the slot is down until a replica is promoted
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  c.disconnect();
  return (Date.now() - started) / 1000;
}

const conns = new Connections({ timeoutMs: 10_000 });
try {
  process.stderr.write(
    `preparing two 3-master clusters with ${KEYS} keys of ${VALUE.length} B and an empty 4th master each…\n`,
  );
  const ours = await prepared(conns);
  const theirs = await prepared(conns);

  process.stderr.write('rebalancing with tiercache…\n');
  const oursSeconds = timed(process.execPath, [CLI, 'cluster', 'rebalance', addr(ours.list[0]!)]);
  const oursMoved = await ours.empty.client().dbsize();
  process.stderr.write('rebalancing with redis-cli…\n');
  const theirsSeconds = timed('redis-cli', [
    '--cluster',
    'rebalance',
    addr(theirs.list[0]!),
    '--cluster-use-empty-masters',
  ]);
  const theirsMoved = await theirs.empty.client().dbsize();

  const lostOurs = KEYS - (await keyCount(ours.list));
  const lostTheirs = KEYS - (await keyCount(theirs.list));
  const oursRate = oursMoved / oursSeconds;
  const theirsRate = theirsMoved / theirsSeconds;
  process.stderr.write('measuring failover…\n');
  const failover = await failoverSeconds(conns);

  console.log(
    `\ncluster benchmark: ${KEYS} keys of ${VALUE.length} B, 3 masters + 1 empty, node ${process.version}\n`,
  );
  console.log(
    `tiercache cluster rebalance   ${oursMoved} keys in ${oursSeconds.toFixed(2)} s = ${Math.round(oursRate)} keys/s, ${lostOurs} keys lost`,
  );
  console.log(
    `redis-cli --cluster rebalance ${theirsMoved} keys in ${theirsSeconds.toFixed(2)} s = ${Math.round(theirsRate)} keys/s, ${lostTheirs} keys lost`,
  );
  console.log(
    `ratio                         ${(oursRate / theirsRate).toFixed(2)}× redis-cli (target ≥ 2.00×)`,
  );
  console.log(
    `failover                      writes to a killed master's slots resumed after ${failover.toFixed(1)} s (cluster-node-timeout 3000 ms)`,
  );
} finally {
  conns.close();
  await Promise.all(all.map((n) => n.stop()));
}
