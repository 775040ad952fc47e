/**
 * `cluster create`: forms a cluster from empty nodes. Refuses any node that already holds keys,
 * slots or other nodes — creating is never a way to "recover" a cluster that has data.
 */
import { TiercacheError } from '../../lib/errors.ts';
import { parseAddr } from '../../lib/redis/addr.ts';
import { type Connections, parseInfo } from './connections.ts';
import { type CreatePlan, planCreate } from './plan-create.ts';
import { until } from './wait.ts';

export interface CreateOptions {
  replicas: number;
  timeoutMs?: number;
  log?: (line: string) => void;
}

/** Refuses a node that runs without cluster mode or holds keys, slots or other nodes. */
export async function assertEmpty(conns: Connections, addr: string): Promise<void> {
  const info = parseInfo(await conns.call<string>(addr, 'INFO', 'cluster'));
  if (info.cluster_enabled !== '1')
    throw new TiercacheError('BAD_REQUEST', `${addr} does not run with cluster-enabled yes`);
  const cluster = parseInfo(await conns.call<string>(addr, 'CLUSTER', 'INFO'));
  const keys = await conns.call<number>(addr, 'DBSIZE');
  if (
    Number(cluster.cluster_known_nodes) > 1 ||
    Number(cluster.cluster_slots_assigned) > 0 ||
    keys > 0
  ) {
    throw new TiercacheError(
      'BAD_REQUEST',
      `${addr} is not an empty node (knows ${cluster.cluster_known_nodes} nodes, ${cluster.cluster_slots_assigned} slots, ${keys} keys); create only forms clusters from empty nodes — use heal or add-shard for a cluster that exists`,
    );
  }
}

export async function createCluster(
  conns: Connections,
  addrs: string[],
  opts: CreateOptions,
): Promise<CreatePlan> {
  return formCluster(conns, planCreate(addrs, opts.replicas), opts);
}

/** Forms a cluster from empty nodes as `plan` says: slots, epochs, MEET, replicas, all in sync. */
export async function formCluster(
  conns: Connections,
  plan: CreatePlan,
  opts: Omit<CreateOptions, 'replicas'>,
): Promise<CreatePlan> {
  const log = opts.log ?? (() => {});
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const addrs = [...plan.masters.map((m) => m.addr), ...plan.replicas.map((r) => r.addr)];
  await Promise.all(addrs.map((a) => assertEmpty(conns, a)));

  const ids = new Map<string, string>();
  await Promise.all(
    addrs.map(async (a) => ids.set(a, await conns.call<string>(a, 'CLUSTER', 'MYID'))),
  );

  for (const m of plan.masters) {
    await conns.call(m.addr, 'CLUSTER', 'ADDSLOTSRANGE', m.slots.start, m.slots.end);
    log(`${m.addr}: master of slots ${m.slots.start}-${m.slots.end}`);
  }
  // Distinct config epochs up front, so no two masters start in a collision.
  await Promise.all(addrs.map((a, i) => conns.call(a, 'CLUSTER', 'SET-CONFIG-EPOCH', i + 1)));
  const [first, ...rest] = addrs;
  for (const a of rest) {
    const { host, port } = parseAddr(a);
    await conns.call(first!, 'CLUSTER', 'MEET', host, port);
  }
  await until(
    `all ${addrs.length} nodes to know each other`,
    async () => {
      const infos = await Promise.all(
        addrs.map(async (a) => parseInfo(await conns.call<string>(a, 'CLUSTER', 'INFO'))),
      );
      return infos.every((i) => Number(i.cluster_known_nodes) === addrs.length);
    },
    timeoutMs,
  );
  for (const r of plan.replicas) {
    await until(
      `${r.addr} to accept REPLICATE`,
      async () => {
        await conns.call(r.addr, 'CLUSTER', 'REPLICATE', ids.get(r.master)!);
        return true;
      },
      timeoutMs,
      200,
    );
    log(`${r.addr}: replica of ${r.master}`);
  }
  // A replica that never synced cannot take over (its data is too old to win an election).
  await until(
    'every replica to be in sync with its master',
    async () => {
      const links = await Promise.all(
        plan.replicas.map(
          async (r) =>
            parseInfo(await conns.call<string>(r.addr, 'INFO', 'replication')).master_link_status,
        ),
      );
      return links.every((l) => l === 'up');
    },
    timeoutMs,
  );
  await until(
    'cluster_state:ok on every node',
    async () => {
      const infos = await Promise.all(
        addrs.map(async (a) => parseInfo(await conns.call<string>(a, 'CLUSTER', 'INFO'))),
      );
      return infos.every((i) => i.cluster_state === 'ok');
    },
    timeoutMs,
  );
  return plan;
}
