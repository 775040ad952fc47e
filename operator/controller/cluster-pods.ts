/**
 * The Redis pods of a CacheCluster and the nodes they answer for (pure): what the planners
 * share.
 */

import { isMaster, type NodeInfo } from '../../lib/redis/topology.ts';
import { type ClusterView, linkInSync, type NodeReport, self } from '../redis/observe.ts';

export interface PodRef {
  name: string;
  shard: number;
  ordinal: number;
  /** ip:port, once the pod has an IP (kept while it terminates: its node still answers). */
  addr: string | undefined;
  /** Its Ready condition (a member of the cluster and, as a replica, in sync). */
  ready: boolean;
  /** Its Redis container runs (it may still be starting, or not yet a member). */
  running: boolean;
  /** Deleted, evicted or drained: its containers are stopping (preStop first). */
  terminating: boolean;
  /** Runs an older revision of its StatefulSet's template (image, config): to be restarted. */
  outdated?: boolean;
  /** Failure domain: the zone of its Kubernetes node, or the node itself when there are no zones. */
  domain?: string | undefined;
}

/** The addresses of the pods that have one. */
export function addrs(pods: PodRef[]): string[] {
  return pods.flatMap((p) => (p.addr ? [p.addr] : []));
}

// Kept where the planners have always found them; they live beside NodeReport.
export { linkInSync, self };

/** A replica whose link to its master is up and that is not in the middle of a full sync. */
export const inSync = (r: NodeReport): boolean => linkInSync(r.replication);

/** The node of each pod that answered, by pod name. */
export function nodesByPod(pods: PodRef[], view: ClusterView): Map<string, NodeReport> {
  const byAddr = new Map(view.reports.map((r) => [r.addr, r]));
  const out = new Map<string, NodeReport>();
  for (const p of pods) {
    const r = p.addr ? byAddr.get(p.addr) : undefined;
    if (r) out.set(p.name, r);
  }
  return out;
}

/** The pod of a shard whose node is a master holding slots (its shard's current master). */
export function shardMaster(
  pods: PodRef[],
  nodes: Map<string, NodeReport>,
  shard: number,
): { pod: PodRef; node: NodeInfo } | undefined {
  for (const pod of pods.filter((p) => p.shard === shard)) {
    const r = nodes.get(pod.name);
    const n = r && self(r);
    if (n && isMaster(n) && n.slots.length > 0) return { pod, node: n };
  }
  return undefined;
}
