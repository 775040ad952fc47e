import { describe, expect, it } from 'vitest';
import { parseAddr } from '../../lib/redis/addr.ts';
import {
  formatRanges,
  parseClusterNodes,
  SLOTS,
  slotCount,
  splitSlots,
  toRanges,
} from '../../lib/redis/topology.ts';
import { batchesByBytes } from '../../operator/redis/batches.ts';
import { planCreate } from '../../operator/redis/plan-create.ts';
import { type MasterSlots, planRebalance, targets } from '../../operator/redis/plan-rebalance.ts';

describe('CLUSTER NODES parsing', () => {
  const text = [
    '07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,redis-3 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected',
    'e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001 myself,master - 0 0 1 connected 0-5460 [5461-<-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]',
    '292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003 master - 0 1426238318243 3 connected 5461-16383 [5461->-e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca]',
    '824fe116063bc5fcf9f4ffd895bc17aee7731ac3 :0@0 master,fail,noaddr - 1426238316232 1426238315232 2 disconnected',
  ].join('\n');
  const nodes = parseClusterNodes(text);

  it('reads ids, addresses, roles, slots and open slots', () => {
    expect(nodes).toHaveLength(4);
    const [replica, me, other, dead] = nodes;
    expect(replica).toMatchObject({
      addr: '127.0.0.1:30004',
      busPort: 31004,
      hostname: 'redis-3',
      masterId: me!.id,
      connected: true,
    });
    expect(me!.flags.has('myself')).toBe(true);
    expect(me!.slots).toEqual([{ start: 0, end: 5460 }]);
    expect(me!.importing.get(5461)).toBe(other!.id);
    expect(other!.migrating.get(5461)).toBe(me!.id);
    expect(slotCount(other!.slots)).toBe(10923);
    expect(dead!.flags.has('fail')).toBe(true);
    expect(dead!.connected).toBe(false);
  });

  it('brackets IPv6 hosts, which Redis prints bare (fd00::5:6379)', () => {
    const [v6, none] = parseClusterNodes(
      [
        'e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca fd00:10::5:6379@16379,c-shard-0-0 myself,master - 0 0 1 connected 0-16383',
        '824fe116063bc5fcf9f4ffd895bc17aee7731ac3 :6379@16379 master,noaddr - 0 0 0 disconnected',
      ].join('\n'),
    );
    expect(v6).toMatchObject({
      addr: '[fd00:10::5]:6379',
      busPort: 16379,
      hostname: 'c-shard-0-0',
    });
    expect(parseAddr(v6!.addr)).toEqual({ host: 'fd00:10::5', port: 6379 });
    expect(none!.addr).toBe(':6379');
  });

  it('turns slot lists into ranges and back', () => {
    expect(toRanges([5, 3, 4, 9, 10, 1])).toEqual([
      { start: 1, end: 1 },
      { start: 3, end: 5 },
      { start: 9, end: 10 },
    ]);
    expect(formatRanges(toRanges([1, 3, 4, 5]))).toBe('1,3-5');
    const three = splitSlots(3);
    expect(three.map((r) => slotCount([r])).reduce((a, b) => a + b)).toBe(SLOTS);
    expect(three[2]!.end).toBe(SLOTS - 1);
  });
});

describe('create plan', () => {
  it('spreads masters over hosts and keeps each replica off its master’s host', () => {
    const addrs = [
      '10.0.0.1:7000',
      '10.0.0.1:7001',
      '10.0.0.2:7000',
      '10.0.0.2:7001',
      '10.0.0.3:7000',
      '10.0.0.3:7001',
    ];
    const plan = planCreate(addrs, 1);
    expect(new Set(plan.masters.map((m) => m.addr.split(':')[0])).size).toBe(3);
    expect(plan.replicas).toHaveLength(3);
    for (const r of plan.replicas) expect(r.addr.split(':')[0]).not.toBe(r.master.split(':')[0]);
    expect(plan.masters.map((m) => slotCount([m.slots])).reduce((a, b) => a + b)).toBe(SLOTS);
  });

  it('keeps replicas off their master’s host with two replicas per master too', () => {
    const hosts = ['10.0.0.1', '10.0.0.2', '10.0.0.3'];
    const addrs = hosts.flatMap((h) => [7000, 7001, 7002].map((p) => `${h}:${p}`));
    const plan = planCreate(addrs, 2);
    expect(plan.replicas).toHaveLength(6);
    for (const r of plan.replicas) expect(r.addr.split(':')[0]).not.toBe(r.master.split(':')[0]);
  });

  it('refuses fewer than 3 masters and duplicate addresses', () => {
    expect(() => planCreate(['a:1', 'b:1', 'c:1', 'd:1'], 1)).toThrow(/at least 3 masters/);
    expect(() => planCreate(['a:1', 'a:1', 'c:1'], 0)).toThrow(/twice/);
  });
});

describe('rebalance plan', () => {
  const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);
  const three: MasterSlots[] = [
    { id: 'a', addr: 'a:1', slots: range(0, 5460), weight: 1 },
    { id: 'b', addr: 'b:1', slots: range(5461, 10921), weight: 1 },
    { id: 'c', addr: 'c:1', slots: range(10922, 16383), weight: 1 },
  ];

  it('does nothing for a balanced cluster', () => {
    expect(planRebalance(three, 2)).toEqual([]);
  });

  it('gives a new empty master its quarter, taken evenly from the others', () => {
    const moves = planRebalance([...three, { id: 'd', addr: 'd:1', slots: [], weight: 1 }], 2);
    expect(moves).toHaveLength(4096);
    expect(moves.every((m) => m.to === 'd')).toBe(true);
    const from = Object.groupBy(moves, (m) => m.from);
    for (const id of ['a', 'b', 'c']) expect(Math.abs(from[id]!.length - 4096 / 3)).toBeLessThan(2);
  });

  it('drains a weight-0 master completely', () => {
    const moves = planRebalance(
      three.map((m) => (m.id === 'c' ? { ...m, weight: 0 } : m)),
      0,
    );
    expect(moves.filter((m) => m.from === 'c')).toHaveLength(5462);
    expect(moves.every((m) => m.to !== 'c')).toBe(true);
    const t = targets(three.map((m) => (m.id === 'c' ? { ...m, weight: 0 } : m)));
    expect(t.get('a')! + t.get('b')!).toBe(SLOTS);
  });
});

describe('MIGRATE batches by bytes', () => {
  it('keeps each batch within the byte budget, a bigger key alone, order kept', () => {
    const MB = 1024 * 1024;
    const keys = ['a', 'b', 'img1', 'c', 'img2', 'img3', 'd'];
    const sizes = [100, 200, 5 * MB, 300, 5 * MB, 9 * MB, 50];
    expect(batchesByBytes(keys, sizes, 8 * MB)).toEqual([
      ['a', 'b', 'img1', 'c'],
      ['img2'],
      ['img3'],
      ['d'],
    ]);
    expect(batchesByBytes(['x', 'y'], [10, 10], 1_000)).toEqual([['x', 'y']]);
    expect(batchesByBytes([], [], 10)).toEqual([]);
  });
});
