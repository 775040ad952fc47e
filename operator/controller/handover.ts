/**
 * Planned disruption: a Redis pod that is being deleted, evicted or drained gets a few
 * seconds (its preStop hook) before SIGTERM. If its node is a master, the operator asks the
 * most caught-up replica of its shard to take over with a coordinated CLUSTER FAILOVER, so
 * writes pause for the handover only, instead of waiting out cluster-node-timeout.
 */
import type { Connections } from '../redis/connections.ts';
import type { ClusterView } from '../redis/observe.ts';
import { isMaster } from '../redis/topology.ts';
import { inSync, nodesByPod, type PodRef, self } from './cluster-pods.ts';
import { failOverTo } from './failover.ts';

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

export async function handOverLeavingMasters(
  conns: Connections,
  pods: PodRef[],
  view: ClusterView,
): Promise<Handovers> {
  const nodes = nodesByPod(pods, view);
  const done: Handover[] = [];
  const unprotected: string[] = [];
  for (const leaving of pods.filter((p) => p.terminating)) {
    const report = nodes.get(leaving.name);
    const master = report && self(report);
    if (!master || !isMaster(master) || master.slots.length === 0) continue;
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
    await failOverTo(conns, best.pod.addr!, 'COORDINATED');
    done.push({
      from: leaving.name,
      to: best.pod.name,
      ms: Math.round(performance.now() - started),
    });
  }
  return { done, unprotected };
}
