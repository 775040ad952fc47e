/**
 * What failure needs (pure), from the pods and what the nodes report: masters that are
 * provably down and the replica that takes over from each, shards with no surviving copy
 * (their slots go to the shard's new empty master), quarantined nodes to admit, shards that
 * are provably empty (only those may be deleted), and masters to move off a crowded failure
 * domain. "Provably" means evidence from the pod (gone, not running, or answering as another
 * node) or from Redis (marked failed) — never a timeout alone.
 */

import { isMaster, type NodeInfo, type SlotRange } from '../../lib/redis/topology.ts';
import type { ClusterView, NodeReport } from '../redis/observe.ts';
import { inSync, nodesByPod, type PodRef, self, shardMaster } from './cluster-pods.ts';

/** The pod a node belongs to, from the hostname it announces (`<pod>.<service>.<ns>.svc`). */
export function podNameOf(n: NodeInfo): string | undefined {
  return n.hostname?.split('.')[0] || undefined;
}

/** The shard of a Redis pod, from its name (`<cc>-shard-<shard>-<ordinal>`). */
export function shardOfPodName(name: string | undefined): number | undefined {
  const m = name ? /-shard-(\d+)-\d+$/.exec(name) : null;
  return m ? Number(m[1]) : undefined;
}

/** A node that answered and holds data: it synced from a master once, or has keys. */
export const holdsData = (r: NodeReport): boolean =>
  Number(r.replication.slave_repl_offset ?? 0) > 0 || r.keys > 0;

const slotOwners = (view: ClusterView): NodeInfo[] =>
  [...view.known.values()].filter((n) => isMaster(n) && n.slots.length > 0);

/**
 * Why a master that did not answer is known to be down; undefined while it may be alive (it
 * answers, or its pod runs at its address and Redis has not marked it failed).
 */
export function whyDown(m: NodeInfo, pods: PodRef[], view: ClusterView): string | undefined {
  if (view.reports.some((r) => r.id === m.id)) return undefined;
  if (m.flags.has('fail')) return 'the cluster marked it failed';
  const name = podNameOf(m);
  const pod = pods.find((p) => p.name === name);
  if (!pod) return `its pod ${name ?? m.addr} is gone`;
  if (pod.terminating) return `its pod ${pod.name} is being deleted`;
  if (!pod.running || !pod.addr) return `its pod ${pod.name} is not running`;
  if (answersAsNewNode(m, pods, view)) return `its pod ${pod.name} restarted as a new, empty node`;
  return undefined;
}

/** The pod of a master that does not answer answers as another node: its data is gone. */
function answersAsNewNode(m: NodeInfo, pods: PodRef[], view: ClusterView): boolean {
  const pod = pods.find((p) => p.name === podNameOf(m));
  return pod?.addr !== undefined && view.reports.some((r) => r.addr === pod.addr && r.id !== m.id);
}

export interface LostMaster {
  shard: number;
  node: NodeInfo;
  why: string;
  /** Its pod answers as a new node: its data is gone for good (no volume, or a lost one). */
  dataGone: boolean;
}

/** Masters holding slots that are provably down, with the shard their pod belongs to. */
export function lostMasters(pods: PodRef[], view: ClusterView): LostMaster[] {
  const out: LostMaster[] = [];
  for (const m of slotOwners(view)) {
    const why = whyDown(m, pods, view);
    const shard = shardOfPodName(podNameOf(m));
    if (why && shard !== undefined)
      out.push({ shard, node: m, why, dataGone: answersAsNewNode(m, pods, view) });
  }
  return out;
}

/**
 * A replica whose link to its master has not been up once since it started: its data came
 * from its own volume and is as old as its last shutdown (a replica re-created from its claim
 * a moment before its master crashed). Its master, restarting with persistence, comes back
 * with writes this replica never saw, so it is promoted only when that master's data is gone.
 */
export const neverSynced = (r: NodeReport): boolean =>
  r.replication.master_link_status !== 'up' &&
  r.replication.master_link_down_since_seconds === '-1';

export interface Promotion {
  shard: number;
  from: { id: string; addr: string; pod: string | undefined };
  to: { pod: string; addr: string };
  /** No majority of masters is up to elect it: the replica takes over without a vote. */
  takeover: boolean;
  why: string;
}

/** A majority of the masters holding slots answer: Redis can still hold an election. */
export function hasQuorum(view: ClusterView): boolean {
  const owners = slotOwners(view);
  const up = owners.filter((m) => view.reports.some((r) => r.id === m.id));
  return up.length * 2 > owners.length;
}

/** The most caught-up replica of a lost master that holds its data, if any. */
function bestReplica(
  lost: LostMaster,
  pods: PodRef[],
  view: ClusterView,
): { pod: PodRef; report: NodeReport } | undefined {
  const nodes = nodesByPod(pods, view);
  let best: { pod: PodRef; report: NodeReport; offset: number } | undefined;
  for (const pod of pods) {
    const r = nodes.get(pod.name);
    if (!r || pod.terminating || self(r).masterId !== lost.node.id || !holdsData(r)) continue;
    if (neverSynced(r) && !lost.dataGone) continue;
    const offset = Number(r.replication.slave_repl_offset ?? 0);
    if (!best || offset > best.offset) best = { pod, report: r, offset };
  }
  return best;
}

/** For each lost master, the replica to promote (shards whose replicas hold nothing have none). */
export function promotions(pods: PodRef[], view: ClusterView): Promotion[] {
  const takeover = !hasQuorum(view);
  const out: Promotion[] = [];
  for (const lost of lostMasters(pods, view)) {
    const best = bestReplica(lost, pods, view);
    if (!best) continue;
    out.push({
      shard: lost.shard,
      from: { id: lost.node.id, addr: lost.node.addr, pod: podNameOf(lost.node) },
      to: { pod: best.pod.name, addr: best.pod.addr! },
      takeover,
      why: lost.why,
    });
  }
  return out;
}

export interface LostSlots {
  shard: number;
  /** The dead master that still owns them. */
  deadId: string;
  slots: SlotRange[];
  /** The shard's new empty master that takes them. */
  master: { pod: string; addr: string };
}

/**
 * Shards whose master is down with no copy left anywhere: every pod of the shard answers, as a
 * new node holding nothing, and no node replicating the dead master holds data. Their slots go
 * to the shard's new empty master, so the cluster serves the whole keyspace again.
 */
export function lostSlots(pods: PodRef[], view: ClusterView): LostSlots[] {
  const nodes = nodesByPod(pods, view);
  const out: LostSlots[] = [];
  for (const lost of lostMasters(pods, view)) {
    const copies = view.reports.some((r) => self(r).masterId === lost.node.id && holdsData(r));
    if (copies) continue;
    const members = pods
      .filter((p) => p.shard === lost.shard)
      .sort((a, b) => a.ordinal - b.ordinal);
    if (members.length === 0 || members.some((p) => !nodes.has(p.name))) continue;
    const empty = (r: NodeReport) => self(r).slots.length === 0 && !holdsData(r);
    if (!members.every((p) => empty(nodes.get(p.name)!))) continue;
    const master = members.find((p) => isMaster(self(nodes.get(p.name)!)));
    if (!master) continue;
    out.push({
      shard: lost.shard,
      deadId: lost.node.id,
      slots: lost.node.slots,
      master: { pod: master.name, addr: master.addr! },
    });
  }
  return out;
}

/**
 * Quarantined nodes that may serve replication now: masters holding slots (their data is the
 * shard's), and replicas in sync with such a master.
 */
export function toAdmit(view: ClusterView): string[] {
  const owners = new Set(slotOwners(view).map((m) => m.id));
  return view.reports
    .filter((r) => {
      if (r.servesReplication) return false;
      const me = self(r);
      if (isMaster(me)) return me.slots.length > 0;
      return me.masterId !== undefined && owners.has(me.masterId) && inSync(r);
    })
    .map((r) => r.addr);
}

/**
 * Whether a shard provably owns nothing: every pod of it answers holding no slot and no key,
 * and no node of the shard owns a slot in any node's view. A pod that does not answer keeps
 * its shard (unless it is terminating).
 */
export function provablyEmpty(shard: number, pods: PodRef[], view: ClusterView): boolean {
  // A pod on its way out (its shard deleted already) need not answer: had its node owned
  // anything, the others' views would still show it below.
  const members = pods.filter((p) => p.shard === shard && !p.terminating);
  const nodes = nodesByPod(pods, view);
  if (members.some((p) => !nodes.has(p.name))) return false;
  const ids = new Set(members.map((p) => nodes.get(p.name)!.id));
  // A replica's keys are a copy of its master's: they count only when that master is of this
  // shard (a replica that migrated to another shard's master holds nothing of its own).
  const ownsKeys = (r: NodeReport) => {
    const me = self(r);
    return r.keys > 0 && (isMaster(me) || ids.has(me.masterId ?? ''));
  };
  if (
    members.some((p) => self(nodes.get(p.name)!).slots.length > 0 || ownsKeys(nodes.get(p.name)!))
  )
    return false;
  return !slotOwners(view).some((n) => ids.has(n.id) || shardOfPodName(podNameOf(n)) === shard);
}

/** Shards to keep: the wanted ones, and every one beyond them that is not provably empty. */
export function shardsToKeep(pods: PodRef[], view: ClusterView, wanted: number): number {
  let keep = wanted;
  const beyond = new Set(pods.map((p) => p.shard));
  for (const n of slotOwners(view)) {
    const s = shardOfPodName(podNameOf(n));
    if (s !== undefined) beyond.add(s);
  }
  for (const s of beyond) if (s >= keep && !provablyEmpty(s, pods, view)) keep = s + 1;
  return keep;
}

export interface MasterMove {
  shard: number;
  /** The in-sync replica, in a less crowded failure domain, that takes the master role. */
  pod: string;
  addr: string;
}

/**
 * Masters spread over failure domains (a pod's zone, or its node), so losing one domain never
 * costs most masters. A move hands one shard's master role to its in-sync replica in another
 * domain (one shard at a time); the one chosen lowers the sum of squared masters per domain,
 * or enables a second move that does (a swap through a third domain).
 */
export function masterToMove(pods: PodRef[], view: ClusterView): MasterMove | undefined {
  const nodes = nodesByPod(pods, view);
  const domains = [...new Set(pods.flatMap((p) => (p.domain ? [p.domain] : [])))];
  const where = new Map<number, string>();
  const options: (MasterMove & { domain: string })[] = [];
  for (const shard of new Set(pods.map((p) => p.shard))) {
    const m = shardMaster(pods, nodes, shard);
    if (!m?.pod.domain) continue;
    where.set(shard, m.pod.domain);
    for (const p of pods) {
      const r = nodes.get(p.name);
      if (p.shard !== shard || !p.domain || p.terminating || !r) continue;
      if (self(r).masterId === m.node.id && inSync(r) && p.domain !== m.pod.domain)
        options.push({ shard, pod: p.name, addr: p.addr!, domain: p.domain });
    }
  }
  const score = (w: Map<number, string>) => {
    const count = new Map(domains.map((d) => [d, 0]));
    for (const d of w.values()) count.set(d, (count.get(d) ?? 0) + 1);
    return [...count.values()].reduce((a, n) => a + n * n, 0);
  };
  const after = (w: Map<number, string>, o: { shard: number; domain: string }) =>
    new Map(w).set(o.shard, o.domain);
  const base = score(where);
  let best: { move: (typeof options)[number]; score: number } | undefined;
  for (const o of options) {
    const s = score(after(where, o));
    if (s < base && (!best || s < best.score)) best = { move: o, score: s };
  }
  if (!best)
    for (const o of options)
      for (const second of options)
        if (second.shard !== o.shard && score(after(after(where, o), second)) < base) {
          best = { move: o, score: base };
          break;
        }
  return best ? { shard: best.move.shard, pod: best.move.pod, addr: best.move.addr } : undefined;
}

/**
 * After a drain (or any uneven placement), pods pile up in some failure domains while another
 * holds none: masters cannot be spread with no replica there. When a schedulable domain holds
 * two pods more than the emptiest, one in-sync replica there is re-created (its shard having
 * no pod in the emptiest domain, so the scheduler's spread may put it there), preferring the
 * busiest domain and a shard whose master sits where the most masters are.
 */
export function podToReplace(
  pods: PodRef[],
  view: ClusterView,
  domains: string[],
): { pod: string } | undefined {
  // Only on a settled cluster, one pod at a time.
  if (domains.length < 2 || pods.some((p) => p.terminating || !p.ready)) return undefined;
  const nodes = nodesByPod(pods, view);
  const podsIn = new Map(domains.map((d) => [d, 0]));
  for (const p of pods)
    if (p.domain && podsIn.has(p.domain)) podsIn.set(p.domain, podsIn.get(p.domain)! + 1);
  const [emptiest, fewest] = [...podsIn].sort((a, b) => a[1] - b[1])[0]!;
  const crowded = (p: PodRef) =>
    p.domain !== undefined && (podsIn.get(p.domain) ?? 0) >= fewest + 2;
  const mastersIn = new Map<string, number>();
  const masterDomain = new Map<number, string | undefined>();
  for (const s of new Set(pods.map((p) => p.shard))) {
    const d = shardMaster(pods, nodes, s)?.pod.domain;
    masterDomain.set(s, d);
    if (d) mastersIn.set(d, (mastersIn.get(d) ?? 0) + 1);
  }
  const candidates = pods.filter((p) => {
    const r = nodes.get(p.name);
    return (
      crowded(p) &&
      !p.terminating &&
      p.ready &&
      r !== undefined &&
      !isMaster(self(r)) &&
      inSync(r) &&
      !pods.some((q) => q.shard === p.shard && q.domain === emptiest)
    );
  });
  // The busiest domain first, then the shard whose master shares its domain with the most.
  const weight = (p: PodRef) =>
    (podsIn.get(p.domain!) ?? 0) * 100 + (mastersIn.get(masterDomain.get(p.shard) ?? '') ?? 0);
  const best = candidates.sort((a, b) => weight(b) - weight(a))[0];
  return best ? { pod: best.name } : undefined;
}
