/**
 * The Redis pods' readiness probe (READY_SCRIPT) against real redis-server processes: Ready
 * only as a member of the cluster and, as a replica, with its link to the master up and no
 * sync in progress — what the per-shard PodDisruptionBudget relies on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Connections, parseInfo } from '../../operator/redis/connections.ts';
import { ReadyScript } from '../helpers/ready-script.ts';
import { type RedisNode, startNodes } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

let probe: ReadyScript;
let nodes: RedisNode[];
const conns = new Connections({ timeoutMs: 2000 });
const addr = (n: RedisNode) => `${n.host}:${n.port}`;
const ready = (n: RedisNode, auth?: Record<string, string>) => probe.passes(n, auth);

beforeAll(async () => {
  probe = new ReadyScript();
  nodes = await startNodes(2, { cluster: true });
});

afterAll(async () => {
  conns.close();
  await Promise.all(nodes.map((n) => n.stop()));
  probe.remove();
});

describe('the Redis readiness probe', () => {
  it('is not Ready alone, Ready as a member master, Ready as an in-sync replica, not Ready once its master is gone', async () => {
    const [a, b] = nodes as [RedisNode, RedisNode];
    expect(ready(a)).toBe(false);
    await conns.call(addr(a), 'CLUSTER', 'ADDSLOTSRANGE', 0, 16383);
    await conns.call(addr(b), 'CLUSTER', 'MEET', a.host, a.port);
    await waitFor(
      'the nodes to know each other',
      async () =>
        parseInfo(await conns.call<string>(addr(a), 'CLUSTER', 'INFO')).cluster_known_nodes === '2',
      10_000,
      50,
    );
    expect(ready(a)).toBe(true);
    const id = await conns.call<string>(addr(a), 'CLUSTER', 'MYID');
    await waitFor(
      'b to replicate a',
      () =>
        conns.call(addr(b), 'CLUSTER', 'REPLICATE', id).then(
          () => true,
          () => false,
        ),
      10_000,
      100,
    );
    await waitFor(
      'b to be in sync',
      async () =>
        parseInfo(await conns.call<string>(addr(b), 'INFO', 'replication')).master_link_status ===
        'up',
      15_000,
      50,
    );
    expect(ready(b)).toBe(true);
    await a.kill();
    await waitFor(
      'b to see its master gone',
      async () =>
        parseInfo(await conns.call<string>(addr(b), 'INFO', 'replication')).master_link_status ===
        'down',
      10_000,
      50,
    );
    expect(ready(b)).toBe(false);
    expect(ready(a)).toBe(false);
  });

  it('authenticates with whichever password of the mounted Secret the server accepts (a copy that lags a rotation)', async () => {
    const [a, b] = (await startNodes(2, { cluster: true })) as [RedisNode, RedisNode];
    try {
      await conns.call(addr(a), 'CLUSTER', 'ADDSLOTSRANGE', 0, 16383);
      await conns.call(addr(b), 'CLUSTER', 'MEET', a.host, a.port);
      await waitFor(
        'the nodes to know each other',
        async () =>
          parseInfo(await conns.call<string>(addr(a), 'CLUSTER', 'INFO')).cluster_known_nodes ===
          '2',
        10_000,
        50,
      );
      await conns.call(addr(a), 'CONFIG', 'SET', 'requirepass', 'new-password');
      // The rotation is over on the server; the kubelet has not refreshed the mount yet.
      expect(ready(a, { password: 'old-password', next: 'new-password' })).toBe(true);
      expect(ready(a, { password: 'old-password', retiring: 'new-password' })).toBe(true);
      expect(ready(a, { password: 'new-password' })).toBe(true);
      expect(ready(a, { password: 'old-password' })).toBe(false);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
