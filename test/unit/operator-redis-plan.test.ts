import { describe, expect, it } from 'vitest';
import { nextRedisStep } from '../../operator/controller/redis-plan.ts';
import { addr, type FixtureNode, formed, pods, view } from '../helpers/cluster-view.ts';

type Node = FixtureNode;

describe('nextRedisStep', () => {
  it('waits for the pods of every shard to exist', () => {
    expect(nextRedisStep([], view([]), { shards: 3, podsPerShard: 2 })).toMatchObject({
      kind: 'wait',
      reason: 'WaitingForPods',
    });
  });

  it('waits for pods that are not running yet', () => {
    const ps = pods(3);
    ps[4]!.running = false;
    const step = nextRedisStep(ps, view(formed(0)), { shards: 3, podsPerShard: 2 });
    expect(step).toMatchObject({ kind: 'wait', reason: 'WaitingForPods' });
  });

  it('bootstraps empty nodes: ordinal 0 of each shard a master, the others its replicas', () => {
    const lonely = pods(3).map((p) => ({ id: `x${p.name}`, addr: p.addr! }));
    const step = nextRedisStep(pods(3), view(lonely, { alone: true }), {
      shards: 3,
      podsPerShard: 2,
    });
    expect(step).toEqual({
      kind: 'bootstrap',
      shards: [0, 1, 2].map((s) => ({ master: addr(s, 0), replicas: [addr(s, 1)] })),
    });
  });

  it('is settled when every shard has its master, replicas and share of slots', () => {
    expect(nextRedisStep(pods(3), view(formed(3)), { shards: 3, podsPerShard: 2 })).toEqual({
      kind: 'settled',
    });
  });

  it('attaches a replaced pod (an empty master) to its shard’s master, which may be ordinal 1', () => {
    const nodes = formed(3);
    // Shard 1 failed over: ordinal 1 is master now; ordinal 0 came back empty as a new node.
    nodes[2] = { id: 'new10', addr: addr(1, 0) };
    nodes[3] = { id: 'n11', addr: addr(1, 1), slots: [{ start: 5461, end: 10921 }] };
    const step = nextRedisStep(pods(3), view(nodes), { shards: 3, podsPerShard: 2 });
    expect(step).toEqual({
      kind: 'attach',
      replicas: [{ addr: addr(1, 0), masterId: 'n11', pod: 'cache-shard-1-0' }],
    });
  });

  it('adds a new shard, then rebalances onto it', () => {
    const nodes = [...formed(3), { id: 'n30', addr: addr(3, 0) }, { id: 'n31', addr: addr(3, 1) }];
    expect(nextRedisStep(pods(4), view(nodes), { shards: 4, podsPerShard: 2 })).toEqual({
      kind: 'add-shards',
      shards: [{ shard: 3, master: addr(3, 0), replicas: [addr(3, 1)] }],
    });
    // A rebalance stopped after one slot: shard 3 has a master with slots, far below its share.
    nodes[6] = { id: 'n30', addr: addr(3, 0), slots: [{ start: 0, end: 0 }] };
    nodes[7] = { id: 'n31', addr: addr(3, 1), master: 'n30' };
    nodes[0]!.slots = [{ start: 1, end: 5460 }];
    expect(nextRedisStep(pods(4), view(nodes), { shards: 4, podsPerShard: 2 })).toEqual({
      kind: 'rebalance',
    });
  });

  it('drains the highest shard beyond the wanted count', () => {
    expect(nextRedisStep(pods(4), view(formed(4)), { shards: 3, podsPerShard: 2 })).toEqual({
      kind: 'drain',
      shard: 3,
      master: addr(3, 0),
    });
  });

  it('meets nodes that do not see each other, and forgets a dead node only when every pod answers', () => {
    const nodes = formed(3);
    const dead: Node = { id: 'gone', addr: '10.9.9.9:6379', master: 'n00', flags: ['fail'] };
    expect(nextRedisStep(pods(3), view([...nodes, dead]), { shards: 3, podsPerShard: 2 })).toEqual({
      kind: 'heal',
      forget: true,
    });
    const restarting = pods(3);
    restarting[5] = { ...restarting[5]!, addr: undefined, ready: false, running: false };
    const step = nextRedisStep(restarting, view([...nodes.slice(0, 5), dead]), {
      shards: 3,
      podsPerShard: 2,
    });
    expect(step).not.toMatchObject({ kind: 'heal', forget: true });
  });

  it('rolls a new revision one pod at a time, replicas before masters', () => {
    const ps = pods(3).map((p) => ({ ...p, outdated: true }));
    const wanted = { shards: 3, podsPerShard: 2 };
    expect(nextRedisStep(ps, view(formed(3)), wanted)).toEqual({
      kind: 'restart',
      pod: 'cache-shard-0-1',
      master: false,
    });
    const mastersLeft = ps.map((p) => ({ ...p, outdated: p.ordinal === 0 }));
    expect(nextRedisStep(mastersLeft, view(formed(3)), wanted)).toEqual({
      kind: 'restart',
      pod: 'cache-shard-0-0',
      master: true,
    });
    mastersLeft[3] = { ...mastersLeft[3]!, ready: false };
    expect(nextRedisStep(mastersLeft, view(formed(3)), wanted)).toMatchObject({
      kind: 'wait',
      reason: 'RollingUpdate',
    });
  });

  it('forgets a node no kept pod answers for once it holds no slots', () => {
    const nodes = [...formed(3), { id: 'drained', addr: addr(3, 0) }];
    expect(nextRedisStep(pods(3), view(nodes), { shards: 3, podsPerShard: 2 })).toEqual({
      kind: 'forget',
      nodes: [{ id: 'drained', addr: addr(3, 0) }],
    });
  });
});
