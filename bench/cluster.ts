/**
 * Cluster benchmark: identical 3-master clusters holding 200k keys of 1 KB each get one empty
 * master added and are rebalanced onto it, side by side in one run:
 *   - Redis 7: `tiercache cluster rebalance` (MIGRATE) and `redis-cli --cluster rebalance
 *     --cluster-use-empty-masters`;
 *   - Valkey 9: tiercache with atomic slot migration (MIGRATESLOTS, the default there), tiercache
 *     forced to MIGRATE (`--engine legacy`), and redis-cli.
 * Prints keys moved per second (wall time of the whole command), the ratios (target ≥ 2× redis-cli)
 * and keys lost, then measures failover: kill a master of a 3+3 Redis cluster
 * (cluster-node-timeout 3000 ms) and time until writes to its slots succeed again.
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

type Server = 'redis' | 'valkey';

async function nodes(count: number, server: Server): Promise<RedisNode[]> {
  const list = await Promise.all(
    Array.from({ length: count }, () => startRedis({ cluster: true, server })),
  );
  all.push(...list);
  return list;
}

async function keyCount(list: RedisNode[]): Promise<number> {
  let n = 0;
  for (const node of list) n += await node.client().dbsize();
  return n;
}

async function prepared(
  conns: Connections,
  server: Server,
): Promise<{ list: RedisNode[]; empty: RedisNode }> {
  const list = await nodes(4, server);
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

interface Run {
  label: string;
  server: Server;
  /** The rebalance command, given the first node's address. */
  command: (seed: string) => [string, string[]];
}

const tiercache =
  (...extra: string[]) =>
  (seed: string): [string, string[]] => [
    process.execPath,
    [CLI, 'cluster', 'rebalance', seed, ...extra],
  ];
const redisCli = (seed: string): [string, string[]] => [
  'redis-cli',
  ['--cluster', 'rebalance', seed, '--cluster-use-empty-masters'],
];
const RUNS: Run[] = [
  { label: 'Redis 7   tiercache (MIGRATE)     ', server: 'redis', command: tiercache() },
  { label: 'Redis 7   redis-cli --cluster     ', server: 'redis', command: redisCli },
  { label: 'Valkey 9  tiercache (MIGRATESLOTS)', server: 'valkey', command: tiercache() },
  {
    label: 'Valkey 9  tiercache (MIGRATE)     ',
    server: 'valkey',
    command: tiercache('--engine', 'legacy'),
  },
  { label: 'Valkey 9  redis-cli --cluster     ', server: 'valkey', command: redisCli },
];

try {
  process.stderr.write(
    `preparing ${RUNS.length} 3-master clusters with ${KEYS} keys of ${VALUE.length} B and an empty 4th master each…\n`,
  );
  const results: { run: Run; moved: number; seconds: number; lost: number }[] = [];
  for (const run of RUNS) {
    // One cluster at a time: the runs do not compete for the two cores.
    const { list, empty } = await prepared(conns, run.server);
    process.stderr.write(`rebalancing: ${run.label.trim()}…\n`);
    const [cmd, args] = run.command(addr(list[0]!));
    const seconds = timed(cmd, args);
    const moved = await empty.client().dbsize();
    results.push({ run, moved, seconds, lost: KEYS - (await keyCount(list)) });
    await Promise.all(list.map((n) => n.stop()));
  }
  process.stderr.write('measuring failover…\n');
  const failover = await failoverSeconds(conns);

  console.log(
    `\ncluster benchmark: ${KEYS} keys of ${VALUE.length} B, 3 masters + 1 empty, node ${process.version}\n`,
  );
  const rate = (label: string) => {
    const r = results.find((x) => x.run.label === label)!;
    return r.moved / r.seconds;
  };
  for (const r of results) {
    const cli = RUNS.find((x) => x.server === r.run.server && x.command === redisCli)!;
    const ratio =
      r.run.command === redisCli
        ? ''
        : `  ${(r.moved / r.seconds / rate(cli.label)).toFixed(2)}× redis-cli`;
    console.log(
      `${r.run.label}  ${r.moved} keys in ${r.seconds.toFixed(2)} s = ${Math.round(r.moved / r.seconds)} keys/s, ${r.lost} keys lost${ratio}`,
    );
  }
  console.log('(target: tiercache ≥ 2.00× redis-cli on the same server)');
  console.log(
    `failover                      writes to a killed master's slots resumed after ${failover.toFixed(1)} s (cluster-node-timeout 3000 ms)`,
  );
} finally {
  conns.close();
  await Promise.all(all.map((n) => n.stop()));
}
