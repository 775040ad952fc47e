/**
 * Which node becomes a master and which a replica of whom (pure). Masters are spread over
 * hosts first; each replica is placed on a host other than its master's when one is left.
 */
import { TiercacheError } from '../../lib/errors.ts';
import { parseAddr } from '../../lib/redis/addr.ts';
import { type SlotRange, splitSlots } from '../../lib/redis/topology.ts';

export interface CreatePlan {
  masters: { addr: string; slots: SlotRange }[];
  replicas: { addr: string; master: string }[];
}

export function planCreate(addrs: string[], replicasPerMaster: number): CreatePlan {
  const unique = [...new Set(addrs)];
  if (unique.length !== addrs.length)
    throw new TiercacheError('BAD_REQUEST', 'the same address is given twice');
  const masterCount = Math.floor(unique.length / (1 + replicasPerMaster));
  if (masterCount < 3) {
    throw new TiercacheError(
      'BAD_REQUEST',
      `a cluster needs at least 3 masters: ${unique.length} nodes with ${replicasPerMaster} replicas each make ${masterCount}`,
    );
  }
  // Round-robin over hosts so consecutive picks land on different hosts.
  const byHost = new Map<string, string[]>();
  for (const a of unique) {
    const host = parseAddr(a).host;
    byHost.set(host, [...(byHost.get(host) ?? []), a]);
  }
  const interleaved: string[] = [];
  while (interleaved.length < unique.length) {
    for (const list of byHost.values()) {
      const next = list.shift();
      if (next) interleaved.push(next);
    }
  }
  const ranges = splitSlots(masterCount);
  const masters = interleaved.slice(0, masterCount).map((addr, i) => ({ addr, slots: ranges[i]! }));
  const spare = interleaved.slice(masterCount);
  const replicas: CreatePlan['replicas'] = [];
  const hostOf = (a: string) => parseAddr(a).host;
  for (let round = 1; round <= replicasPerMaster; round++) {
    for (const [i, m] of masters.entries()) {
      if (spare.length === 0) break;
      const taken = new Set(replicas.filter((r) => r.master === m.addr).map((r) => hostOf(r.addr)));
      const elsewhere = (a: string) => hostOf(a) !== hostOf(m.addr) && !taken.has(hostOf(a));
      // Prefer the host of the master `round` places on: with interleaved hosts this rotation
      // leaves every master a replica elsewhere, where a greedy pick can strand the last one.
      const preferred = hostOf(masters[(i + round) % masters.length]!.addr);
      let pick = spare.findIndex((a) => elsewhere(a) && hostOf(a) === preferred);
      if (pick < 0) pick = spare.findIndex(elsewhere);
      if (pick < 0) pick = spare.findIndex((a) => hostOf(a) !== hostOf(m.addr));
      if (pick < 0) pick = 0;
      replicas.push({ addr: spare.splice(pick, 1)[0]!, master: m.addr });
    }
  }
  return { masters, replicas };
}

/**
 * The plan when membership is already decided (the operator: each shard is a StatefulSet whose
 * pods the scheduler keeps apart): slots split evenly over the shards' masters, in order.
 */
export function planShards(shards: { master: string; replicas: string[] }[]): CreatePlan {
  if (shards.length === 0) throw new TiercacheError('BAD_REQUEST', 'a cluster needs a master');
  const ranges = splitSlots(shards.length);
  return {
    masters: shards.map((s, i) => ({ addr: s.master, slots: ranges[i]! })),
    replicas: shards.flatMap((s) => s.replicas.map((addr) => ({ addr, master: s.master }))),
  };
}
