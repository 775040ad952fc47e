/**
 * Which node each shard's snapshot comes from (pure): an in-sync replica — linked to its
 * master, not in a full sync, allowed to serve replication — the one with the highest
 * replication offset; the master itself only when the shard has no such replica, so a backup
 * never forks a master that has a replica to spare it.
 */
import { formatRanges } from '../../lib/redis/topology.ts';
import { type ClusterView, linkInSync, type NodeReport, self } from '../redis/observe.ts';

export interface SnapshotSource {
  shard: number;
  masterId: string;
  masterAddr: string;
  slots: string;
  addr: string;
  role: 'replica' | 'master';
}

const inSync = (r: NodeReport) =>
  r.replication.role === 'slave' && linkInSync(r.replication) && r.servesReplication;

export function chooseSources(view: ClusterView): SnapshotSource[] {
  const masters = view.reports
    .map((r) => ({ report: r, me: self(r) }))
    .filter(({ me }) => me.flags.has('master') && me.slots.length > 0)
    .sort((a, b) => a.me.slots[0]!.start - b.me.slots[0]!.start);
  return masters.map(({ report, me }, shard) => {
    const replicas = view.reports
      .filter((r) => self(r).masterId === me.id)
      .filter(inSync)
      .sort(
        (a, b) =>
          Number(b.replication.slave_repl_offset ?? 0) -
          Number(a.replication.slave_repl_offset ?? 0),
      );
    const from = replicas[0];
    return {
      shard,
      masterId: me.id,
      masterAddr: report.addr,
      slots: formatRanges(me.slots),
      addr: from?.addr ?? report.addr,
      role: from ? 'replica' : 'master',
    };
  });
}
