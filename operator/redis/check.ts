/**
 * Health of a cluster from an observed view (pure): what makes it unhealthy (problems) and
 * what deserves attention (warnings), plus a per-shard summary.
 */

import {
  formatRanges,
  isFailed,
  isMaster,
  SLOTS,
  slotCount,
  slotsOf,
  toRanges,
} from '../../lib/redis/topology.ts';
import type { ClusterView } from './observe.ts';

export interface ShardSummary {
  id: string;
  addr: string;
  slots: string;
  slotCount: number;
  keys: number | undefined;
  replicas: { id: string; addr: string; failed: boolean }[];
}

export interface CheckResult {
  healthy: boolean;
  problems: string[];
  warnings: string[];
  shards: ShardSummary[];
  openSlots: { slot: number; node: string; state: 'migrating' | 'importing'; peer: string }[];
  uncovered: number[];
}

export function checkCluster(view: ClusterView): CheckResult {
  const problems: string[] = [];
  const warnings: string[] = [];
  for (const u of view.unreachable) problems.push(`${u.addr} does not answer: ${u.error}`);
  if (view.reports.length === 0)
    return { healthy: false, problems, warnings, shards: [], openSlots: [], uncovered: [] };

  // Slot ownership as each node claims it for itself.
  const owner = new Array<string | undefined>(SLOTS);
  for (const r of view.reports) {
    const self = r.nodes.find((n) => n.flags.has('myself'))!;
    for (const s of slotsOf(self.slots)) {
      if (owner[s] && owner[s] !== self.id)
        problems.push(`slot ${s} is claimed by both ${owner[s]} and ${self.id}`);
      owner[s] = self.id;
    }
  }
  // Masters that did not answer still own slots in the others' views.
  for (const n of view.known.values()) {
    if (!isMaster(n)) continue;
    for (const s of slotsOf(n.slots)) owner[s] ??= n.id;
  }
  const uncovered: number[] = [];
  for (let s = 0; s < SLOTS; s++) if (!owner[s]) uncovered.push(s);
  if (uncovered.length > 0)
    problems.push(
      `${uncovered.length} slots are not covered (${formatRanges(toRanges(uncovered))})`,
    );

  const openSlots: CheckResult['openSlots'] = [];
  for (const r of view.reports) {
    const self = r.nodes.find((n) => n.flags.has('myself'))!;
    for (const [slot, peer] of self.migrating)
      openSlots.push({ slot, node: r.addr, state: 'migrating', peer });
    for (const [slot, peer] of self.importing)
      openSlots.push({ slot, node: r.addr, state: 'importing', peer });
  }
  if (openSlots.length > 0)
    problems.push(
      `${openSlots.length} open slots (migrating/importing): ${openSlots
        .slice(0, 5)
        .map((o) => `${o.slot} ${o.state} on ${o.node}`)
        .join(', ')}`,
    );

  // Do all reachable nodes agree on who owns what?
  const views = new Set(
    view.reports.map((r) =>
      r.nodes
        .filter(isMaster)
        .filter((n) => n.slots.length > 0)
        .map((n) => `${n.id}:${formatRanges(n.slots)}`)
        .sort()
        .join('|'),
    ),
  );
  if (views.size > 1) problems.push('nodes do not agree on the slot map yet');

  for (const n of view.known.values()) {
    if (isFailed(n)) problems.push(`node ${n.id} (${n.addr}) is marked failed`);
    else if (n.flags.has('pfail'))
      warnings.push(`node ${n.id} (${n.addr}) is suspected failing (pfail)`);
  }
  for (const r of view.reports) {
    if (r.info.cluster_state !== 'ok')
      problems.push(`${r.addr} reports cluster_state:${r.info.cluster_state}`);
  }

  const keysById = new Map(view.reports.map((r) => [r.id, r.keys]));
  const shards: ShardSummary[] = [...view.known.values()]
    .filter((n) => isMaster(n) && !isFailed(n) && n.slots.length > 0)
    .sort((a, b) => (a.slots[0]?.start ?? 0) - (b.slots[0]?.start ?? 0))
    .map((m) => ({
      id: m.id,
      addr: m.addr,
      slots: formatRanges(m.slots),
      slotCount: slotCount(m.slots),
      keys: keysById.get(m.id),
      replicas: [...view.known.values()]
        .filter((n) => n.masterId === m.id)
        .map((n) => ({ id: n.id, addr: n.addr, failed: isFailed(n) })),
    }));
  for (const s of shards) {
    if (s.replicas.filter((r) => !r.failed).length === 0)
      warnings.push(`master ${s.addr} has no working replica`);
  }
  return { healthy: problems.length === 0, problems, warnings, shards, openSlots, uncovered };
}
