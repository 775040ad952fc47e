/**
 * Planned disruption: a Redis pod that is being deleted, evicted or drained gets a few
 * seconds (its preStop hook) before SIGTERM. If its node is a master, the operator asks the
 * most caught-up replica of its shard to take over with a coordinated CLUSTER FAILOVER, so
 * writes pause for the handover only, instead of waiting out cluster-node-timeout.
 */

import { isMaster } from '../../lib/redis/topology.ts';
import type { Connections } from '../redis/connections.ts';
import type { ClusterView, NodeReport } from '../redis/observe.ts';
import { inSync, nodesByPod, type PodRef, self } from './cluster-pods.ts';
import { failOverTo } from './failover.ts';
import { podNameOf, shardOfPodName } from './failure-plan.ts';

export interface Handover {
  from: string;
  to: string;
  ms: number;
}

export interface Handovers {
  done: Handover[];
  /** Leaving masters with no in-sync replica to hand over to: their shard goes down with them. */
  unprotected: string[];
}

/**
 * Nodes still answering at an address no pod has any more: their pod was force-deleted (its
 * process lives on for a moment) or replaced. They are leaving as surely as a terminating pod.
 */
function orphans(
  pods: PodRef[],
  view: ClusterView,
): { name: string; shard: number; report: NodeReport }[] {
  const addrs = new Set(pods.map((p) => p.addr));
  return view.reports.flatMap((r) => {
    const name = podNameOf(self(r));
    const shard = shardOfPodName(name);
    return !addrs.has(r.addr) && name && shard !== undefined ? [{ name, shard, report: r }] : [];
  });
}

export async function handOverLeavingMasters(
  conns: Connections,
  pods: PodRef[],
  view: ClusterView,
): Promise<Handovers> {
  const nodes = nodesByPod(pods, view);
  const done: Handover[] = [];
  const unprotected: string[] = [];
  const leavingMasters = [
    ...pods
      .filter((p) => p.terminating)
      .flatMap((p) => {
        const r = nodes.get(p.name);
        return r ? [{ name: p.name, shard: p.shard, report: r }] : [];
      }),
    ...orphans(pods, view),
  ];
  for (const leaving of leavingMasters) {
    const master = self(leaving.report);
    if (!isMaster(master) || master.slots.length === 0) continue;
    // The most caught-up replica of the shard whose link is up (the least data to wait for).
    let best: { pod: PodRef; offset: number } | undefined;
    for (const pod of pods) {
      const r = nodes.get(pod.name);
      if (pod.shard !== leaving.shard || pod.terminating || !r) continue;
      if (self(r).masterId !== master.id || !inSync(r)) continue;
      const offset = Number(r.replication.slave_repl_offset ?? -1);
      if (!best || offset > best.offset) best = { pod, offset };
    }
    if (!best) {
      unprotected.push(leaving.name);
      continue;
    }
    const started = performance.now();
    try {
      await failOverTo(conns, best.pod.addr!, 'COORDINATED');
    } catch {
      // It went away meanwhile: its replica is promoted as for any master that is down.
      continue;
    }
    done.push({
      from: leaving.name,
      to: best.pod.name,
      ms: Math.round(performance.now() - started),
    });
  }
  return { done, unprotected };
}
