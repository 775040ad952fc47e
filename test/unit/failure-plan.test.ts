import { describe, expect, it } from 'vitest';
import {
  lostSlots,
  masterToMove,
  podToReplace,
  promotions,
  provablyEmpty,
  shardsToKeep,
  toAdmit,
  whyDown,
} from '../../operator/controller/failure-plan.ts';
import { nextRedisStep } from '../../operator/controller/redis-plan.ts';
import { addr, type FixtureNode, formed, pod, pods, view } from '../helpers/cluster-view.ts';

const wanted = { shards: 3, podsPerShard: 2 };
const shard1 = [{ start: 5461, end: 10921 }];

/** Shard 1's master (n10) is gone; what answers at its pod's address instead is `fresh`. */
function masterRestartedEmpty(): FixtureNode[] {
  const nodes = formed(3);
  nodes[2] = { ...nodes[2]!, down: true, flags: ['noaddr'] };
  return [...nodes, { id: 'new10', addr: addr(1, 0) }];
}

describe('a master that is down', () => {
  it('is proven down by its pod answering as a new, empty node, and its replica takes over', () => {
    const v = view(masterRestartedEmpty());
    expect(whyDown(v.known.get('n10')!, pods(3), v)).toMatch(/restarted as a new, empty node/);
    expect(promotions(pods(3), v)).toEqual([
      {
        shard: 1,
        from: { id: 'n10', addr: addr(1, 0), pod: 'cache-shard-1-0' },
        to: { pod: 'cache-shard-1-1', addr: addr(1, 1) },
        takeover: false,
        why: 'its pod cache-shard-1-0 restarted as a new, empty node',
      },
    ]);
  });

  it('is proven down by its pod being gone or not running', () => {
    const nodes = formed(3);
    nodes[2] = { ...nodes[2]!, down: true };
    const v = view(nodes);
    const gone = pods(3).filter((p) => p.name !== 'cache-shard-1-0');
    expect(whyDown(v.known.get('n10')!, gone, v)).toMatch(/pod cache-shard-1-0 is gone/);
    const stopped = pods(3).map((p) =>
      p.name === 'cache-shard-1-0' ? { ...p, running: false } : p,
    );
    expect(promotions(stopped, v)).toMatchObject([{ to: { pod: 'cache-shard-1-1' } }]);
  });

  it('is not promoted away from while its pod runs at its address: a timeout alone proves nothing', () => {
    const nodes = formed(3);
    nodes[2] = { ...nodes[2]!, down: true };
    const v = view(nodes);
    expect(promotions(pods(3), v)).toEqual([]);
    expect(nextRedisStep(pods(3), v, wanted)).toMatchObject({
      kind: 'wait',
      reason: 'ShardWithoutMaster',
    });
  });

  it('is waited for, not replaced, while its only replica has not synced since it started (its data is older)', () => {
    // The failure suite's case, persistence on: the replica was re-created from its claim a
    // moment before its master crashed; the master comes back from its AOF with the writes
    // since, which promoting the replica would throw away.
    const nodes = formed(3);
    nodes[2] = { ...nodes[2]!, down: true };
    nodes[3] = { ...nodes[3]!, neverSynced: true, keys: 500 };
    const restarting = pods(3).map((p) =>
      p.name === 'cache-shard-1-0' ? { ...p, running: false } : p,
    );
    expect(promotions(restarting, view(nodes))).toEqual([]);
    expect(nextRedisStep(restarting, view(nodes), wanted)).toMatchObject({
      kind: 'wait',
      reason: 'ShardWithoutMaster',
    });
    // Once the master's pod answers as a new node, its data is gone: the replica's is the best left.
    const v = view([...nodes, { id: 'new10', addr: addr(1, 0) }]);
    expect(promotions(pods(3), v)).toMatchObject([{ to: { pod: 'cache-shard-1-1' } }]);
    // A replica that was in sync until the crash takes over at once.
    nodes[3] = { ...nodes[3]!, neverSynced: false, linkDown: true };
    expect(promotions(restarting, view(nodes))).toMatchObject([{ to: { pod: 'cache-shard-1-1' } }]);
  });

  it('is not forgotten while a slot it was migrating is still open: fix finishes it first', () => {
    // The failure suite's case: a drain's source killed mid-slot; its replica took over, the
    // target still imports the slot from the dead node. Forgetting the dead node would clear
    // IMPORTING on the target and strand the keys already moved there.
    const nodes = formed(3);
    nodes[2] = { ...nodes[2]!, down: true, flags: ['fail', 'noaddr'], slots: [] };
    nodes[3] = { id: 'n11', addr: addr(1, 1), slots: shard1 };
    nodes[0] = { ...nodes[0]!, importing: { 5461: 'n10' } };
    const restarted = [...nodes, { id: 'new10', addr: addr(1, 0), master: 'n11' }];
    expect(nextRedisStep(pods(3), view(restarted), wanted)).toMatchObject({ kind: 'fix' });
    // Once no open slot names it, it is forgotten.
    nodes[0] = { ...nodes[0]!, importing: {} };
    expect(
      nextRedisStep(
        pods(3),
        view([...nodes, { id: 'new10', addr: addr(1, 0), master: 'n11' }]),
        wanted,
      ),
    ).toEqual({ kind: 'heal', forget: true });
  });

  it('is taken over without a vote when most masters are down (quorum lost)', () => {
    const nodes = formed(3);
    nodes[0] = { ...nodes[0]!, down: true };
    nodes[2] = { ...nodes[2]!, down: true };
    const left = pods(3).filter((p) => p.ordinal !== 0 || p.shard === 2);
    const planned = promotions(left, view(nodes));
    expect(planned.map((p) => [p.to.pod, p.takeover])).toEqual([
      ['cache-shard-0-1', true],
      ['cache-shard-1-1', true],
    ]);
  });

  it('is never replaced by its shard’s new empty pod while its replica holds the data', () => {
    // The case: the replacement pod is empty, the replica still replicates the dead master.
    const v = view(masterRestartedEmpty());
    const step = nextRedisStep(pods(3), v, wanted);
    expect(step.kind).toBe('wait');
    expect(step).not.toMatchObject({ kind: 'add-shards' });
    expect(lostSlots(pods(3), v)).toEqual([]);
  });

  it('moves no slot while a master that came back still claims what its replica took over', () => {
    const nodes = formed(3);
    // n10 restarted with its old claim (persistence); n11 took over meanwhile.
    nodes[3] = { id: 'n11', addr: addr(1, 1), slots: shard1 };
    const step = nextRedisStep(pods(3), view(nodes), wanted);
    expect(step).toMatchObject({ kind: 'wait', reason: 'Converging' });
  });

  it('finishes a migration its source left open when it died, once its replica took over', () => {
    const nodes = formed(3);
    // Shard 1 was moving slot 5461 to shard 0 when its master died; n11 now owns shard 1.
    nodes[0] = { ...nodes[0]!, importing: { 5461: 'n10' } };
    nodes[2] = { id: 'n10', addr: addr(1, 0), master: 'n11' };
    nodes[3] = { id: 'n11', addr: addr(1, 1), slots: shard1 };
    expect(nextRedisStep(pods(3), view(nodes), wanted)).toEqual({ kind: 'fix', openSlots: 1 });
  });

  it('prefers the most caught-up replica, and never one that never synced', () => {
    const nodes = formed(3, 2);
    nodes[3] = { ...nodes[3]!, down: true, flags: ['noaddr'] }; // n10
    nodes[4] = { ...nodes[4]!, offset: 500 };
    nodes[5] = { ...nodes[5]!, offset: 900 };
    nodes.push({ id: 'new10', addr: addr(1, 0) });
    expect(promotions(pods(3, 2), view(nodes))).toMatchObject([{ to: { pod: 'cache-shard-1-2' } }]);
    nodes[4] = { ...nodes[4]!, offset: 0 };
    nodes[5] = { ...nodes[5]!, offset: 0 };
    expect(promotions(pods(3, 2), view(nodes))).toEqual([]);
  });
});

describe('a shard with no surviving copy', () => {
  it('gets its slots back on its new empty master once every pod of it answers empty', () => {
    const nodes = formed(3);
    nodes[2] = { ...nodes[2]!, down: true, flags: ['noaddr'] };
    nodes[3] = { ...nodes[3]!, down: true, flags: ['noaddr'] };
    const v = view([
      ...nodes,
      { id: 'new10', addr: addr(1, 0) },
      { id: 'new11', addr: addr(1, 1) },
    ]);
    const lost = {
      shard: 1,
      deadId: 'n10',
      slots: shard1,
      master: { pod: 'cache-shard-1-0', addr: addr(1, 0) },
    };
    expect(lostSlots(pods(3), v)).toEqual([lost]);
    // Its dead replica (no slots) is forgotten first, then the slots are given back.
    expect(nextRedisStep(pods(3), v, wanted)).toEqual({ kind: 'heal', forget: true });
    const healed = view([
      ...nodes.filter((n) => n.id !== 'n11'),
      { id: 'new10', addr: addr(1, 0) },
      { id: 'new11', addr: addr(1, 1) },
    ]);
    expect(nextRedisStep(pods(3), healed, wanted)).toEqual({ kind: 'reassign-slots', ...lost });
  });

  it('waits while one of its pods does not answer yet (it may hold the data)', () => {
    const nodes = formed(3);
    nodes[2] = { ...nodes[2]!, down: true, flags: ['noaddr'] };
    nodes[3] = { ...nodes[3]!, down: true, flags: ['noaddr'] };
    const v = view([...nodes, { id: 'new10', addr: addr(1, 0) }]);
    expect(lostSlots(pods(3), v)).toEqual([]);
  });

  it('with replicasPerShard 0: the restarted pod serves its shard again, empty', () => {
    const nodes = formed(3, 0);
    nodes[1] = { ...nodes[1]!, down: true, flags: ['noaddr'] };
    const v = view([...nodes, { id: 'new10', addr: addr(1, 0) }]);
    expect(lostSlots(pods(3, 0), v)).toMatchObject([
      { shard: 1, master: { pod: 'cache-shard-1-0' } },
    ]);
  });
});

describe('quarantined nodes', () => {
  it('are admitted as masters holding slots or replicas in sync with one, not as new empty nodes', () => {
    const nodes: FixtureNode[] = formed(2).map((n) => ({ ...n, quarantined: true }));
    nodes.push({ id: 'fresh', addr: addr(2, 0), quarantined: true });
    nodes.push({
      id: 'lagging',
      addr: addr(2, 1),
      master: 'n00',
      linkDown: true,
      quarantined: true,
    });
    expect(toAdmit(view(nodes)).sort()).toEqual([addr(0, 0), addr(0, 1), addr(1, 0), addr(1, 1)]);
    expect(toAdmit(view(formed(2)))).toEqual([]);
  });
});

describe('removing a shard', () => {
  it('keeps a shard beyond the spec while its master is down with its slots', () => {
    const nodes = formed(4);
    nodes[6] = { ...nodes[6]!, down: true };
    const v = view(nodes);
    expect(provablyEmpty(3, pods(4), v)).toBe(false);
    expect(shardsToKeep(pods(4), v, 3)).toBe(4);
  });

  it('keeps a shard whose pod does not answer, and removes one that answers empty everywhere', () => {
    const drained: FixtureNode[] = [
      ...formed(3),
      { id: 'n30', addr: addr(3, 0) },
      { id: 'n31', addr: addr(3, 1) },
    ];
    expect(shardsToKeep(pods(4), view(drained), 3)).toBe(3);
    const silent = drained.map((n) => (n.id === 'n31' ? { ...n, down: true } : n));
    expect(shardsToKeep(pods(4), view(silent), 3)).toBe(4);
    const withKeys = drained.map((n) => (n.id === 'n30' ? { ...n, keys: 3 } : n));
    expect(shardsToKeep(pods(4), view(withKeys), 3)).toBe(4);
    // Its replica followed the slots to another shard's master: a copy, not the shard's own.
    const migrated = drained.map((n) => (n.id === 'n31' ? { ...n, master: 'n00', keys: 40 } : n));
    expect(shardsToKeep(pods(4), view(migrated), 3)).toBe(3);
    // Deleted already: its pods are terminating and stopped answering; it is not re-created.
    const leaving = pods(4).map((p) => (p.shard === 3 ? { ...p, terminating: true } : p));
    const gone = drained.map((n) => (n.id.startsWith('n3') ? { ...n, down: true } : n));
    expect(shardsToKeep(leaving, view(gone), 3)).toBe(3);
  });
});

describe('masters over failure domains', () => {
  it('moves a master back when one domain holds two more than another', () => {
    // Shard 1 failed over to ordinal 1 (zone-2, where shard 2's master is); zone-1 holds none.
    const nodes = formed(3);
    nodes[2] = { id: 'n10', addr: addr(1, 0), master: 'n11' };
    nodes[3] = { id: 'n11', addr: addr(1, 1), slots: shard1 };
    const v = view(nodes);
    expect(masterToMove(pods(3), v)).toEqual({
      shard: 1,
      pod: 'cache-shard-1-0',
      addr: addr(1, 0),
    });
    expect(nextRedisStep(pods(3), v, wanted)).toEqual({
      kind: 'move-master',
      shard: 1,
      pod: 'cache-shard-1-0',
      addr: addr(1, 0),
    });
    // Not while the shard's last election is recent: its masters would not vote (the bench
    // found a move retried every 3 s after a takeover, each try pausing writes for seconds).
    expect(nextRedisStep(pods(3), v, { ...wanted, electedRecently: new Set([1]) })).toMatchObject({
      kind: 'wait',
      reason: 'SpreadingMasters',
    });
    expect(nextRedisStep(pods(3), v, { ...wanted, electedRecently: new Set([0]) })).toMatchObject({
      kind: 'move-master',
    });
    expect(masterToMove(pods(3), view(formed(3)))).toBeUndefined();
    const sameDomain = pods(3).map((p) => ({ ...p, domain: 'one' }));
    expect(masterToMove(sameDomain, v)).toBeUndefined();
    expect(pod(0, 0).domain).toBe('zone-0');
  });

  it('swaps through a third domain when no single move helps', () => {
    // Shards 0 and 1: masters in A, replicas in B; shard 2: master in B, replica in C.
    const domains: Record<string, string> = {
      'cache-shard-0-0': 'A',
      'cache-shard-0-1': 'B',
      'cache-shard-1-0': 'A',
      'cache-shard-1-1': 'B',
      'cache-shard-2-0': 'B',
      'cache-shard-2-1': 'C',
    };
    const placed = pods(3).map((p) => ({ ...p, domain: domains[p.name] }));
    const v = view(formed(3));
    expect(masterToMove(placed, v)).toEqual({ shard: 2, pod: 'cache-shard-2-1', addr: addr(2, 1) });
    // After that move, shard 0 (or 1) can go to B.
    const moved = formed(3);
    moved[4] = { id: 'n20', addr: addr(2, 0), master: 'n21' };
    moved[5] = { id: 'n21', addr: addr(2, 1), slots: [{ start: 10922, end: 16383 }] };
    expect(masterToMove(placed, view(moved))).toMatchObject({ pod: 'cache-shard-0-1' });
  });
});

describe('pods over failure domains', () => {
  it('re-creates an in-sync replica of a crowded domain once another domain is empty (after a drain)', () => {
    // Node A was drained: masters (ordinal 0) in B, replicas in C; A holds nothing.
    const drained = pods(3).map((p) => ({ ...p, domain: p.ordinal === 0 ? 'B' : 'C' }));
    const v = view(formed(3));
    expect(podToReplace(drained, v, ['A', 'B', 'C'])).toEqual({ pod: 'cache-shard-0-1' });
    // While A is cordoned it is no domain to fill; and nothing moves while a pod is not ready.
    expect(podToReplace(drained, v, ['B', 'C'])).toBeUndefined();
    const settling = drained.map((p, i) => (i === 5 ? { ...p, ready: false } : p));
    expect(podToReplace(settling, v, ['A', 'B', 'C'])).toBeUndefined();
    // Even spread: nothing to do.
    expect(podToReplace(pods(3), v, ['zone-0', 'zone-1', 'zone-2'])).toBeUndefined();
    // Masters already spread (one per domain of B, C, D), A empty: a replica moves, but only
    // once the last re-creation is long enough ago; until then the cluster is not settled.
    const where = ['B', 'C', 'C', 'D', 'D', 'B'];
    const spread = pods(3).map((p, i) => ({ ...p, domain: where[i] }));
    const four = { ...wanted, domains: ['A', 'B', 'C', 'D'] };
    expect(nextRedisStep(spread, v, { ...four, mayReplacePods: true })).toMatchObject({
      kind: 'replace-pod',
    });
    expect(nextRedisStep(spread, v, { ...four, mayReplacePods: false })).toMatchObject({
      kind: 'wait',
      reason: 'SpreadingPods',
    });
    // A pod not Ready yet hides the next move: not settled either; nor is a pod being
    // re-created (still Ready while it terminates).
    const syncing = spread.map((p, i) => (i === 1 ? { ...p, ready: false } : p));
    const leaving = spread.map((p, i) => (i === 1 ? { ...p, terminating: true } : p));
    for (const unready of [syncing, leaving])
      expect(nextRedisStep(unready, v, { ...four, mayReplacePods: true })).toMatchObject({
        kind: 'wait',
        reason: 'PodsNotReady',
      });
    expect(
      nextRedisStep(drained, v, { ...wanted, domains: ['A', 'B', 'C'], mayReplacePods: true }),
    ).toEqual({
      kind: 'move-master',
      shard: 0,
      pod: 'cache-shard-0-1',
      addr: addr(0, 1),
    });
  });
});
