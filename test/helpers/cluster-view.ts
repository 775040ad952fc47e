/**
 * Cluster views for the planners' unit tests: nodes as Redis describes them, pods as the
 * operator sees them. Node `n<shard><ordinal>` lives at 10.0.<shard>.<ordinal> and announces
 * the hostname of pod `cache-shard-<shard>-<ordinal>`.
 */

import type { NodeInfo, SlotRange } from '../../lib/redis/topology.ts';
import type { PodRef } from '../../operator/controller/cluster-pods.ts';
import type { ClusterView, NodeReport } from '../../operator/redis/observe.ts';

export interface FixtureNode {
  id: string;
  addr: string;
  master?: string;
  slots?: SlotRange[];
  keys?: number;
  /** `fail` also means the node does not answer. */
  flags?: string[];
  /** Does not answer (the others still list it). */
  down?: boolean;
  /** The pod whose hostname it announces (default: from its address). */
  pod?: string;
  /** A replica's replication offset (default 100: it synced). */
  offset?: number;
  linkDown?: boolean;
  /** A replica whose link has not been up once since it started (its data from its volume). */
  neverSynced?: boolean;
  quarantined?: boolean;
  /** Slots it imports (`IMPORTING`), by source id. */
  importing?: Record<number, string>;
}

export const addr = (shard: number, ordinal: number) => `10.0.${shard}.${ordinal}:6379`;

function podOfAddr(a: string): string | undefined {
  const m = /^10\.0\.(\d+)\.(\d+):/.exec(a);
  return m ? `cache-shard-${m[1]}-${m[2]}` : undefined;
}

export function view(nodes: FixtureNode[], opts: { alone?: boolean } = {}): ClusterView {
  const info = (n: FixtureNode): NodeInfo => {
    const pod = n.pod ?? podOfAddr(n.addr);
    return {
      id: n.id,
      addr: n.addr,
      busPort: 16379,
      hostname: pod ? `${pod}.cache-redis.ns.svc` : undefined,
      flags: new Set([n.master ? 'slave' : 'master', ...(n.flags ?? [])]),
      masterId: n.master,
      configEpoch: 1,
      connected: true,
      slots: n.slots ?? [],
      migrating: new Map(),
      importing: new Map(Object.entries(n.importing ?? {}).map(([k, v]) => [Number(k), v])),
    };
  };
  const answering = nodes.filter((n) => !n.flags?.includes('fail') && !n.down);
  const reports: NodeReport[] = answering.map((me) => {
    const seen = opts.alone ? [me] : nodes;
    const lines = seen.map((n) => {
      const i = info(n);
      if (n.id === me.id) i.flags.add('myself');
      return i;
    });
    return {
      addr: me.addr,
      id: me.id,
      nodes: lines,
      info: { cluster_known_nodes: String(seen.length), cluster_state: 'ok' },
      replication: (me.master
        ? {
            role: 'slave',
            master_sync_in_progress: '0',
            slave_repl_offset: String(me.offset ?? 100),
            ...(me.linkDown || me.neverSynced
              ? {
                  master_link_status: 'down',
                  master_link_down_since_seconds: me.neverSynced ? '-1' : '3',
                }
              : { master_link_status: 'up' }),
          }
        : { role: 'master' }) as Record<string, string>,
      keys: me.keys ?? 0,
      servesReplication: !me.quarantined,
      aclUsers: ['default'],
      defaultUserOn: true,
    };
  });
  const known = new Map<string, NodeInfo>();
  for (const r of reports)
    for (const n of r.nodes) if (!known.has(n.id) || n.flags.has('myself')) known.set(n.id, n);
  return {
    reports,
    unreachable: nodes.filter((n) => n.down).map((n) => ({ addr: n.addr, error: 'refused' })),
    known,
  };
}

export const pod = (shard: number, ordinal: number, ready = true): PodRef => ({
  name: `cache-shard-${shard}-${ordinal}`,
  shard,
  ordinal,
  addr: addr(shard, ordinal),
  ready,
  running: ready,
  terminating: false,
  domain: `zone-${(shard + ordinal) % 3}`,
});

export const pods = (shards: number, replicas = 1): PodRef[] =>
  Array.from({ length: shards }, (_, s) =>
    Array.from({ length: 1 + replicas }, (_, o) => pod(s, o)),
  ).flat();

/** A formed cluster of `shards` masters (ordinal 0) with their replicas, slots split evenly. */
export function formed(shards: number, replicas = 1, total = shards): FixtureNode[] {
  const per = Math.floor(16384 / total);
  return Array.from({ length: shards }, (_, s) => [
    {
      id: `n${s}0`,
      addr: addr(s, 0),
      slots: [{ start: s * per, end: s === total - 1 ? 16383 : (s + 1) * per - 1 }],
    },
    ...Array.from({ length: replicas }, (_, r) => ({
      id: `n${s}${r + 1}`,
      addr: addr(s, r + 1),
      master: `n${s}0`,
    })),
  ]).flat();
}
