/**
 * Which slots move where so that every master holds its share (pure). A master of weight 0
 * (one being drained) gives away everything; the others end within one slot of their share.
 */
import { SLOTS } from '../../lib/redis/topology.ts';

export interface MasterSlots {
  id: string;
  addr: string;
  slots: number[];
  weight: number;
}

export interface PlannedMove {
  slot: number;
  from: string;
  to: string;
}

/** Each master's target slot count, proportional to weight, summing to 16384. */
export function targets(masters: MasterSlots[]): Map<string, number> {
  const total = masters.reduce((w, m) => w + m.weight, 0);
  const out = new Map<string, number>();
  let assigned = 0;
  const order = [...masters].sort((a, b) => b.weight - a.weight || a.id.localeCompare(b.id));
  for (const m of order) {
    const t = total === 0 ? 0 : Math.floor((SLOTS * m.weight) / total);
    out.set(m.id, t);
    assigned += t;
  }
  // Hand out the remainder one slot at a time to weighted masters.
  for (let i = 0; assigned < SLOTS && total > 0; i = (i + 1) % order.length) {
    if (order[i]!.weight > 0) {
      out.set(order[i]!.id, out.get(order[i]!.id)! + 1);
      assigned += 1;
    }
  }
  return out;
}

/**
 * Moves that balance the masters. Nothing moves when every master is within `thresholdPct`
 * of its target (a drained master, target 0, always moves).
 */
export function planRebalance(masters: MasterSlots[], thresholdPct = 2): PlannedMove[] {
  const want = targets(masters);
  const off = (m: MasterSlots) => {
    const t = want.get(m.id)!;
    return t === 0 ? m.slots.length > 0 : (Math.abs(m.slots.length - t) / t) * 100 > thresholdPct;
  };
  if (!masters.some(off)) return [];
  const givers = masters
    .filter((m) => m.slots.length > want.get(m.id)!)
    .map((m) => ({
      id: m.id,
      spare: [...m.slots].sort((a, b) => b - a).slice(0, m.slots.length - want.get(m.id)!),
    }));
  const takers = masters
    .filter((m) => m.slots.length < want.get(m.id)!)
    .map((m) => ({ id: m.id, need: want.get(m.id)! - m.slots.length }));
  const moves: PlannedMove[] = [];
  for (const t of takers) {
    while (t.need > 0) {
      // Take from whoever has the most to spare, so giving stays even.
      const g = givers.reduce(
        (best, x) => (x.spare.length > best.spare.length ? x : best),
        givers[0]!,
      );
      const slot = g.spare.pop();
      if (slot === undefined) break;
      moves.push({ slot, from: g.id, to: t.id });
      t.need -= 1;
    }
  }
  return moves.sort((a, b) => a.slot - b.slot);
}
