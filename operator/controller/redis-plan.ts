/**
 * What the Redis Cluster of a CacheCluster needs next (pure), from its pods and what the
 * nodes report. One step per reconcile, level-triggered: the next reconcile sees the result
 * and picks the following step, so an operator restart anywhere just resumes.
 */

import {
  isMaster,
  type NodeInfo,
  type SlotRange,
  slotCount,
  slotsOf,
} from '../../lib/redis/topology.ts';
import { checkCluster } from '../redis/check.ts';
import type { ClusterView, NodeReport } from '../redis/observe.ts';
import { planRebalance } from '../redis/plan-rebalance.ts';
import { inSync, nodesByPod, type PodRef, self, shardMaster } from './cluster-pods.ts';
import {
  lostMasters,
  lostSlots,
  masterToMove,
  podNameOf,
  podToReplace,
  shardOfPodName,
} from './failure-plan.ts';

export type RedisStep =
  | { kind: 'wait'; reason: string; message: string }
  | { kind: 'bootstrap'; shards: { master: string; replicas: string[] }[] }
  /** MEET nodes at their current addresses and, when `forget`, forget dead ones (`healCluster`). */
  | { kind: 'heal'; forget: boolean }
  /** New shards: each empty master joins with its replicas, then one rebalance gives them slots. */
  | { kind: 'add-shards'; shards: { shard: number; master: string; replicas: string[] }[] }
  | { kind: 'attach'; replicas: { addr: string; masterId: string; pod: string }[] }
  /** A shard lost every copy: its slots go to its new empty master (the keys are gone). */
  | {
      kind: 'reassign-slots';
      shard: number;
      deadId: string;
      slots: SlotRange[];
      master: { pod: string; addr: string };
    }
  /** Masters crowd one failure domain: this in-sync replica elsewhere takes over its shard. */
  | { kind: 'move-master'; shard: number; pod: string; addr: string }
  /** Pods crowd some failure domains while another has none: this replica is re-created. */
  | { kind: 'replace-pod'; pod: string }
  | { kind: 'rebalance' }
  /** Migrations left open (importing/migrating) are finished, so no key is left behind. */
  | { kind: 'fix'; openSlots: number }
  | { kind: 'drain'; shard: number; master: string }
  /** Nodes holding no slots that no kept pod answers for (a drained shard, a half-done removal). */
  | { kind: 'forget'; nodes: { id: string; addr: string }[] }
  /** Rolling change: restart one outdated pod, replicas before masters (a master hands over first). */
  | { kind: 'restart'; pod: string; master: boolean }
  | { kind: 'settled' };

/** Steps that delete a pod (its StatefulSet re-creates it). */
export const deletesPod = (step: RedisStep): boolean =>
  step.kind === 'replace-pod' || step.kind === 'restart';

/**
 * Why slots must not move yet: nodes that disagree on the slot map, or one whose cluster
 * state is not ok (a node that just joined does not accept keys yet).
 */
function converging(view: ClusterView): string | undefined {
  if (checkCluster(view).problems.some((p) => p.includes('do not agree')))
    return 'waiting for the nodes to agree on the slot map';
  const notOk = view.reports.filter((r) => r.info.cluster_state !== 'ok');
  if (notOk.length > 0)
    return `waiting for ${notOk.map((r) => r.addr).join(', ')} to report cluster_state ok`;
  return undefined;
}

/** True when every node sees every other at its current address (otherwise heal MEETs them). */
function everyoneMet(reports: NodeReport[]): boolean {
  return reports.every((a) =>
    reports.every((b) => {
      if (a.id === b.id) return true;
      const n = a.nodes.find((x) => x.id === b.id);
      return (
        n !== undefined && n.addr === b.addr && !n.flags.has('fail') && !n.flags.has('handshake')
      );
    }),
  );
}

/** Failed nodes without slots that no pod answers for: heal forgets them. */
function deadNodes(view: ClusterView): NodeInfo[] {
  const live = new Set(view.reports.map((r) => r.id));
  return [...view.known.values()].filter(
    (n) =>
      !live.has(n.id) && (n.flags.has('fail') || n.flags.has('noaddr')) && n.slots.length === 0,
  );
}

/**
 * A node that does not answer and that a live node still imports a slot from or migrates one
 * to. Forgetting it would clear that open slot (Redis drops IMPORTING/MIGRATING states naming
 * a forgotten node), so `fix` could no longer finish it, and the keys already moved would be
 * stranded on a node that does not own their slot (found by the failure suite: a drain's source
 * killed, its node forgotten before the slots it had in flight were finished; one key lost).
 */
function openSlotWithAbsentNode(view: ClusterView): boolean {
  const live = new Set(view.reports.map((r) => r.id));
  return view.reports.some((r) => {
    const me = self(r);
    return [...me.importing.values(), ...me.migrating.values()].some((id) => !live.has(id));
  });
}

export interface Wanted {
  shards: number;
  /** 1 + replicasPerShard. */
  podsPerShard: number;
  /** Failure domains pods can be scheduled to (zones, or nodes without zones). */
  domains?: string[];
  /** Re-creating a pod to even out placement is allowed now (it is rate-limited). */
  mayReplacePods?: boolean;
  /**
   * Shards that held an election less than twice the node timeout ago: Redis's masters vote
   * for a shard at most once in that window, and a coordinated failover that wins no vote
   * pauses the master's writes for up to 5 s each time it is tried.
   */
  electedRecently?: Set<number>;
}

export function nextRedisStep(pods: PodRef[], view: ClusterView, wanted: Wanted): RedisStep {
  const { shards, podsPerShard } = wanted;
  const missing = pods.filter((p) => !p.addr || !p.running);
  const formed = view.reports.some((r) => self(r).slots.length > 0);
  for (let i = 0; i < shards && !formed; i++) {
    const have = pods.filter((p) => p.shard === i).length;
    if (have < podsPerShard)
      return {
        kind: 'wait',
        reason: 'WaitingForPods',
        message: `waiting for shard ${i}'s pods (${have} of ${podsPerShard} exist)`,
      };
  }
  if (missing.length > 0 && view.reports.every((r) => slotCount(self(r).slots) === 0)) {
    return {
      kind: 'wait',
      reason: 'WaitingForPods',
      message: `waiting for ${missing.map((p) => p.name).join(', ')} to run`,
    };
  }
  const nodes = nodesByPod(pods, view);

  if (!formed) {
    const fresh = view.reports.every(
      (r) => r.keys === 0 && Number(r.info.cluster_known_nodes) <= 1,
    );
    const answered = pods.filter((p) => p.shard < shards).every((p) => nodes.has(p.name));
    if (!answered)
      return {
        kind: 'wait',
        reason: 'WaitingForRedis',
        message: 'waiting for every Redis node to answer',
      };
    if (!fresh) return { kind: 'heal', forget: false };
    return {
      kind: 'bootstrap',
      shards: Array.from({ length: shards }, (_, i) => {
        const members = pods.filter((p) => p.shard === i).sort((a, b) => a.ordinal - b.ordinal);
        return { master: members[0]!.addr!, replicas: members.slice(1).map((p) => p.addr!) };
      }),
    };
  }

  // Nodes are forgotten only while every pod answers: a pod that is restarting still owns its
  // node, which comes back (with its id, from its volume) at the pod's new address. Nor while
  // an open slot names a node that is gone: `fix` finishes it first.
  const allAnswered = pods.every((p) => nodes.has(p.name));
  const mayForget = allAnswered && !openSlotWithAbsentNode(view);
  // Among the kept pods only: a drained shard's nodes, reset and on their way out, stay out.
  const kept = new Set(pods.map((p) => p.addr));
  if (!everyoneMet(view.reports.filter((r) => kept.has(r.addr))))
    return { kind: 'heal', forget: mayForget };
  if (mayForget && deadNodes(view).length > 0) return { kind: 'heal', forget: true };

  const podAddrs = new Set(pods.map((p) => p.addr));
  const strays = [...view.known.values()].filter(
    (n) => !podAddrs.has(n.addr) && n.slots.length === 0 && !n.flags.has('handshake'),
  );
  if (mayForget && strays.length > 0)
    return { kind: 'forget', nodes: strays.map((n) => ({ id: n.id, addr: n.addr })) };

  const shardCount = Math.max(shards, ...pods.map((p) => p.shard + 1));
  // Replicas first: every pod of a shard replicates that shard's master.
  const attach: { addr: string; masterId: string; pod: string }[] = [];
  for (let i = 0; i < shardCount; i++) {
    const master = shardMaster(pods, nodes, i);
    if (!master) continue;
    for (const pod of pods.filter((p) => p.shard === i && p !== master.pod)) {
      const r = nodes.get(pod.name);
      if (!r) continue;
      const n = self(r);
      const wrong = isMaster(n) ? n.slots.length === 0 : n.masterId !== master.node.id;
      if (wrong) attach.push({ addr: pod.addr!, masterId: master.node.id, pod: pod.name });
    }
  }
  if (attach.length > 0) return { kind: 'attach', replicas: attach };

  const [lost] = lostSlots(pods, view);
  if (lost) return { kind: 'reassign-slots', ...lost };

  // Nothing moves while a master that owns slots does not answer: its replica takes over first
  // (the operator promotes it as soon as the pod shows it down, or Redis does after node-timeout).
  const silent = [...view.known.values()].filter(
    (n) => isMaster(n) && n.slots.length > 0 && !view.reports.some((r) => r.id === n.id),
  );
  if (silent.length > 0) {
    const down = new Set(lostMasters(pods, view).map((l) => l.node.id));
    const who = silent.map((n) => podNameOf(n) ?? n.addr).join(', ');
    return {
      kind: 'wait',
      reason: 'ShardWithoutMaster',
      message: silent.every((n) => down.has(n.id))
        ? `${who} is down; waiting for a replica to take over or its pod to come back`
        : `${who} does not answer; waiting for it or for Redis to mark it failed`,
    };
  }

  // Slots move only on a cluster that agrees on who owns what. Migrations left open (a
  // source master that died mid-move) are finished first: they are what the nodes disagree on.
  const check = checkCluster(view);
  const doubled = check.problems.find((p) => p.includes('claimed by both'));
  if (doubled)
    return {
      kind: 'wait',
      reason: 'Converging',
      message: `waiting for the nodes to agree on the slot map (${doubled})`,
    };
  if (check.openSlots.length > 0) return { kind: 'fix', openSlots: check.openSlots.length };
  const unsettled = converging(view);
  if (unsettled) return { kind: 'wait', reason: 'Converging', message: unsettled };

  // Scale-out: wanted shards that never had a master get one, with replicas. A shard whose
  // master is down is never re-created this way: its replica holds its data.
  const added: { shard: number; master: string; replicas: string[] }[] = [];
  const owned = new Set(
    [...view.known.values()]
      .filter((n) => n.slots.length > 0)
      .map((n) => shardOfPodName(podNameOf(n))),
  );
  for (let i = 0; i < shards; i++) {
    if (shardMaster(pods, nodes, i)) continue;
    const members = pods.filter((p) => p.shard === i).sort((a, b) => a.ordinal - b.ordinal);
    if (members.length < podsPerShard || members.some((p) => !nodes.has(p.name)))
      return { kind: 'wait', reason: 'WaitingForPods', message: `waiting for shard ${i}'s pods` };
    // New: nothing of it owns a slot anywhere and its nodes hold no key (its replicas may
    // replicate its empty master already: an add-shards cut short is simply run again).
    const holdsNothing = (p: PodRef) => {
      const r = nodes.get(p.name)!;
      return self(r).slots.length === 0 && r.keys === 0;
    };
    const emptyMaster = members.find((p) => isMaster(self(nodes.get(p.name)!)));
    if (owned.has(i) || !members.every(holdsNothing) || !emptyMaster) {
      return {
        kind: 'wait',
        reason: 'ShardWithoutMaster',
        message: `shard ${i} has no master, and its nodes are not all new and empty`,
      };
    }
    added.push({
      shard: i,
      master: emptyMaster.addr!,
      replicas: members.filter((p) => p !== emptyMaster).map((p) => p.addr!),
    });
  }
  if (added.length > 0) return { kind: 'add-shards', shards: added };

  // Scale-in: shards beyond the wanted count are drained, the highest first.
  for (let i = shardCount - 1; i >= shards; i--) {
    const master = shardMaster(pods, nodes, i);
    if (master) return { kind: 'drain', shard: i, master: master.pod.addr! };
  }

  // Balanced? Every master its share within 2 % (the same plan `rebalance` carries out).
  // From the wanted shards' pods' own lines: a dead node's stale claim in another's view, a
  // drained node that still answers, or a leaving shard's empty master is not one to balance over.
  const wantedAddrs = new Set(pods.filter((p) => p.shard < shards).map((p) => p.addr));
  const masters = view.reports
    .filter((r) => wantedAddrs.has(r.addr))
    .map(self)
    .filter((n) => isMaster(n) && !n.flags.has('handshake'));
  const moves = planRebalance(
    masters.map((m) => ({ id: m.id, addr: m.addr, slots: [...slotsOf(m.slots)], weight: 1 })),
    2,
  );
  if (moves.length > 0) return { kind: 'rebalance' };
  // A rolling change first (its handovers move masters anyway), then masters are spread.
  const restart = rollingRestart(pods, nodes);
  if (restart) return restart;
  const move = masterToMove(pods, view);
  if (move && wanted.electedRecently?.has(move.shard))
    return {
      kind: 'wait',
      reason: 'SpreadingMasters',
      message: `shard ${move.shard}'s master moves to ${move.pod} once its masters may vote for it again (twice the node timeout after its last election)`,
    };
  if (move) return { kind: 'move-master', ...move };
  const replace = podToReplace(pods, view, wanted.domains ?? []);
  if (!replace) {
    // A pod starting, syncing or on its way out (a re-creation just begun) may hide the next
    // re-creation (nothing is moved until every pod is Ready): not settled until then, so
    // Ready never precedes a planned disruption (found by the failure suite: a master crashed
    // on "Settled" while its replica was being re-created, and the shard lost writes).
    const unready = pods.filter((p) => !p.ready || p.terminating).map((p) => p.name);
    if (unready.length > 0 && (wanted.domains ?? []).length > 1)
      return {
        kind: 'wait',
        reason: 'PodsNotReady',
        message: `waiting for ${unready.join(', ')} to be Ready`,
      };
    return { kind: 'settled' };
  }
  // Each re-created pod costs a full sync: one at a time, and not settled (Ready) meanwhile,
  // since the next one will leave its shard without an in-sync replica for a while.
  if (!wanted.mayReplacePods)
    return {
      kind: 'wait',
      reason: 'SpreadingPods',
      message: `${replace.pod} is re-created next to spread the pods over every zone (one pod every 20 s at most)`,
    };
  return { kind: 'replace-pod', ...replace };
}

/** The next pod of a rolling change: one at a time, once every pod is back and ready. */
function rollingRestart(pods: PodRef[], nodes: Map<string, NodeReport>): RedisStep | undefined {
  const outdated = pods.filter((p) => p.outdated);
  if (outdated.length === 0) return undefined;
  // The last restarted pod must be back and its node caught up: a master's handover needs an
  // in-sync replica.
  const settling = pods.some((p) => {
    const r = nodes.get(p.name);
    return p.terminating || !p.ready || !r || (r.replication.role === 'slave' && !inSync(r));
  });
  if (settling)
    return {
      kind: 'wait',
      reason: 'RollingUpdate',
      message: `${outdated.length} pods still run the previous revision; waiting for the last restart`,
    };
  const isMasterPod = (p: PodRef) => {
    const r = nodes.get(p.name);
    return r !== undefined && isMaster(self(r)) && self(r).slots.length > 0;
  };
  const next = outdated.find((p) => !isMasterPod(p)) ?? outdated[0]!;
  return { kind: 'restart', pod: next.name, master: isMasterPod(next) };
}
