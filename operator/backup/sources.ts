/**
 * Which node each shard's snapshot comes from (pure): an in-sync replica — linked to its
 * master, not in a full sync, allowed to serve replication — the one with the highest
 * replication offset; the master itself only when the shard has no such replica, so a backup
 * never forks a master that has a replica to spare it.
 */
import { formatRanges } from '../../lib/redis/topology.ts';
import type { ClusterView, NodeReport } from '../redis/observe.ts';

export interface SnapshotSource {
  shard: number;
  masterId: string;
  masterAddr: string;
  slots: string;
  addr: string;
  role: 'replica' | 'master';
}

const inSync = (r: NodeReport) =>
  r.replication.role === 'slave' &&
  r.replication.master_link_status === 'up' &&
  r.replication.master_sync_in_progress === '0' &&
  r.servesReplication;

export function chooseSources(view: ClusterView): SnapshotSource[] {
  const masters = view.reports
    .map((r) => ({ report: r, self: r.nodes.find((n) => n.flags.has('myself'))! }))
    .filter(({ self }) => self.flags.has('master') && self.slots.length > 0)
    .sort((a, b) => a.self.slots[0]!.start - b.self.slots[0]!.start);
  return masters.map(({ report, self }, shard) => {
    const replicas = view.reports
      .filter((r) => r.nodes.find((n) => n.flags.has('myself'))?.masterId === self.id)
      .filter(inSync)
      .sort(
        (a, b) =>
          Number(b.replication.slave_repl_offset ?? 0) -
          Number(a.replication.slave_repl_offset ?? 0),
      );
    const from = replicas[0];
    return {
      shard,
      masterId: self.id,
      masterAddr: report.addr,
      slots: formatRanges(self.slots),
      addr: from?.addr ?? report.addr,
      role: from ? 'replica' : 'master',
    };
  });
}
