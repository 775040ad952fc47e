/**
 * The operator's own ACL user with real redis-server processes started from the operator's
 * auth.conf (persistence off and on): taught live to running nodes while the manager signs in as
 * default, then used for everything the operator does — forming the cluster, adding a shard and
 * moving slots with their keys (MIGRATE signs in to the target with AUTH2 as the same user), and
 * a backup's snapshot (SYNC). No node refuses it anything, no key is lost, it may not wipe data
 * or stop a server, and it is forgotten again live.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { withDefaults } from '../../operator/api/types.ts';
import { fetchSnapshot } from '../../operator/backup/snapshot.ts';
import { admit } from '../../operator/controller/failover.ts';
import { forgetOperatorUser, teachOperatorUser } from '../../operator/controller/operator-user.ts';
import { Connections } from '../../operator/redis/connections.ts';
import { createCluster } from '../../operator/redis/create.ts';
import { addShard } from '../../operator/redis/reshard.ts';
import { OPERATOR_USER } from '../../operator/resources/names.ts';
import { authConf } from '../../operator/resources/redis-config.ts';
import { fill, missing, type RedisNode, startNodes } from '../helpers/redis.ts';

const KEYS = 5000;
const started: RedisNode[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.stop()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe.each([
  ['persistence off (the default)', false],
  ['persistence on', true],
])('the operator signing in as its own user, %s', (_label, persistence) => {
  it('is taught live, forms the cluster, adds a shard moving every key, takes a snapshot, is refused FLUSHALL/SHUTDOWN/MONITOR, and is forgotten live', async () => {
    const redis = withDefaults({
      redis: { persistence: { enabled: persistence }, auth: { users: { operator: true } } },
    }).redis;
    // The nodes start without the user, as a running cluster does when it is turned on.
    const nodes = await startNodes(4, { cluster: true, config: authConf(redis, ['pw']) });
    started.push(...nodes);
    const addrs = nodes.map((n) => `${n.host}:${n.port}`);
    const asDefault = new Connections({ password: 'pw', timeoutMs: 5000 });
    const asOperator = new Connections({
      username: OPERATOR_USER,
      password: 'opw',
      timeoutMs: 5000,
    });
    try {
      // Before it is taught, the user is refused; after, every node lets it in.
      await expect(asOperator.call(addrs[0]!, 'PING')).rejects.toThrow(/WRONGPASS/);
      asOperator.forget(addrs[0]!);
      expect(await teachOperatorUser(asDefault, addrs, 'opw')).toEqual([]);
      await asDefault.call(addrs[0]!, 'ACL', 'LOG', 'RESET'); // the refusal just above

      await admit(asOperator, addrs.slice(0, 3));
      await createCluster(asOperator, addrs.slice(0, 3), { replicas: 0 });
      const client = new Cluster([{ host: nodes[0]!.host, port: nodes[0]!.port }], {
        redisOptions: { username: 'default', password: 'pw' },
      });
      try {
        await fill(client, KEYS);
        await admit(asOperator, [addrs[3]!]);
        const moved = await addShard(
          asOperator,
          addrs[0]!,
          { master: addrs[3]!, replicas: [] },
          { rebalance: true },
        );
        expect(moved?.keysMoved).toBeGreaterThan(KEYS / 8);
        expect(await asOperator.call(addrs[3]!, 'DBSIZE')).toBe(moved?.keysMoved);
        expect(await missing(client, KEYS)).toBe(0);
      } finally {
        client.disconnect();
      }

      // A backup's snapshot (SYNC) signed in as the user.
      const dir = mkdtempSync(join(tmpdir(), 'tiercache-operator-user-'));
      dirs.push(dir);
      const snapshot = await fetchSnapshot(addrs[3]!, join(dir, 'shard.rdb'), {
        username: OPERATOR_USER,
        password: 'opw',
      });
      expect(snapshot.bytes).toBeGreaterThan(0);

      // No node refused it anything; it may not wipe data or stop a server.
      for (const a of addrs) expect(await asDefault.call(a, 'ACL', 'LOG'), a).toEqual([]);
      for (const command of [['FLUSHALL'], ['FLUSHDB'], ['SHUTDOWN', 'NOSAVE'], ['MONITOR']])
        await expect(asOperator.call(addrs[0]!, ...command), command[0]).rejects.toThrow(/NOPERM/);

      // Forgotten live: no node has it, and it is refused again.
      expect(await forgetOperatorUser(asDefault, addrs)).toEqual([]);
      for (const a of addrs)
        expect(await asDefault.call(a, 'ACL', 'GETUSER', OPERATOR_USER), a).toBeNull();
      asOperator.forget(addrs[1]!);
      await expect(asOperator.call(addrs[1]!, 'PING')).rejects.toThrow(/WRONGPASS/);
    } finally {
      asDefault.close();
      asOperator.close();
    }
  }, 60_000);
});
