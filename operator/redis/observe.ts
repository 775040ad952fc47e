/**
 * Observing a cluster: starting from seed addresses, ask every reachable node for its view
 * (`CLUSTER NODES`, `CLUSTER INFO`, key count). The result is plain data for the planners.
 */

import { isFailed, type NodeInfo, parseClusterNodes } from '../../lib/redis/topology.ts';
import { REPLICATION_USER } from '../resources/names.ts';
import { type Connections, parseInfo } from './connections.ts';

export interface NodeReport {
  addr: string;
  id: string;
  /** This node's view of the whole cluster. */
  nodes: NodeInfo[];
  info: Record<string, string>;
  /** `INFO replication`: role, and for a replica its link and sync state and offset. */
  replication: Record<string, string>;
  keys: number;
  /**
   * Whether the node may serve replication (SYNC/PSYNC). A node the operator started
   * quarantined (no persistence) may not until it is admitted as a legitimate owner of data.
   */
  servesReplication: boolean;
  /** The node's ACL users (`ACL USERS`): which of the operator's users it has now. */
  aclUsers: string[];
  /** Whether clients may sign in as `default` (off: spec.redis.auth.defaultUser disabled). */
  defaultUserOn: boolean;
}

export interface ClusterView {
  reports: NodeReport[];
  /** Addresses that did not answer. */
  unreachable: { addr: string; error: string }[];
  /** Every node known to any reachable node, by id (the freshest reported flags win). */
  known: Map<string, NodeInfo>;
}

/** A node's own line of its CLUSTER NODES. */
export const self = (r: NodeReport): NodeInfo => r.nodes.find((n) => n.flags.has('myself'))!;

/** From `INFO replication`: the link to the master is up and no full sync is in progress. */
export const linkInSync = (replication: Record<string, string>): boolean =>
  replication.master_link_status === 'up' && replication.master_sync_in_progress === '0';

export async function reportOf(conns: Connections, addr: string): Promise<NodeReport> {
  const [nodesText, infoText, replicationText, keys, acl, replicationAcl, aclUsers] =
    await Promise.all([
      conns.call<string>(addr, 'CLUSTER', 'NODES'),
      conns.call<string>(addr, 'CLUSTER', 'INFO'),
      conns.call<string>(addr, 'INFO', 'replication'),
      conns.call<number>(addr, 'DBSIZE'),
      conns.call<unknown[]>(addr, 'ACL', 'GETUSER', 'default'),
      conns.call<unknown[] | null>(addr, 'ACL', 'GETUSER', REPLICATION_USER),
      conns.call<string[]>(addr, 'ACL', 'USERS'),
    ]);
  const nodes = parseClusterNodes(nodesText);
  return {
    addr,
    id: nodes.find((n) => n.flags.has('myself'))!.id,
    nodes,
    info: parseInfo(infoText),
    replication: parseInfo(replicationText),
    keys,
    // Both users replicas may sign in as: one left quarantined is admitted again.
    servesReplication:
      servesReplication(acl) && (replicationAcl === null || servesReplication(replicationAcl)),
    aclUsers,
    defaultUserOn: userIsOn(acl),
  };
}

/** From `ACL GETUSER <user>`: whether it is on (clients may sign in as it). */
export function userIsOn(getuser: unknown[]): boolean {
  const i = getuser.indexOf('flags');
  const flags = i >= 0 ? getuser[i + 1] : undefined;
  return Array.isArray(flags) && flags.includes('on');
}

/**
 * From `ACL GETUSER <user>`: whether it may run both SYNC and PSYNC. Its command rules are
 * read left to right as Redis applies them (the forms the operator writes: `+@all -sync -psync`
 * for default, `-@all +ping +replconf [+sync +psync]` for the replication user).
 */
export function servesReplication(getuser: unknown[]): boolean {
  const i = getuser.indexOf('commands');
  const rules = i >= 0 ? String(getuser[i + 1]).split(/\s+/) : [];
  const allowed = (command: string) =>
    rules.reduce(
      (ok, rule) =>
        rule === '+@all' || rule === `+${command}`
          ? true
          : rule === '-@all' || rule === `-${command}`
            ? false
            : ok,
      false,
    );
  return allowed('sync') && allowed('psync');
}

export async function observe(conns: Connections, seeds: string[]): Promise<ClusterView> {
  const reports = new Map<string, NodeReport>();
  const unreachable = new Map<string, string>();
  const queue = [...new Set(seeds)];
  const seen = new Set(queue);
  while (queue.length > 0) {
    const batch = queue.splice(0);
    await Promise.all(
      batch.map(async (addr) => {
        try {
          const r = await reportOf(conns, addr);
          if ([...reports.values()].some((x) => x.id === r.id)) return; // same node under another address
          reports.set(addr, r);
          for (const n of r.nodes) {
            if (!seen.has(n.addr) && !isFailed(n) && !n.flags.has('handshake') && n.addr !== ':0') {
              seen.add(n.addr);
              queue.push(n.addr);
            }
          }
        } catch (err) {
          unreachable.set(addr, (err as Error).message);
        }
      }),
    );
  }
  const known = new Map<string, NodeInfo>();
  for (const r of reports.values()) {
    for (const n of r.nodes) {
      // A node's own line is the authority on itself.
      if (n.flags.has('myself') || !known.has(n.id)) known.set(n.id, n);
    }
  }
  return {
    reports: [...reports.values()],
    unreachable: [...unreachable].map(([addr, error]) => ({ addr, error })),
    known,
  };
}
