/**
 * Replication's own ACL user switched on and off live, with real redis-server processes started
 * from the operator's auth.conf, persistence off (nodes start quarantined) and on, a writer
 * running throughout. At each step the replica's link is cut and must come back signed in as the
 * user of the moment; a rotation of the default password leaves replication alone; the user can
 * replicate and nothing else; a quarantined node stays quarantined for the new user; and every
 * write the master acknowledged is on the replica at the end.
 */
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { withDefaults } from '../../operator/api/types.ts';
import { carryOutAuth } from '../../operator/controller/auth.ts';
import { planAuth } from '../../operator/controller/auth-plan.ts';
import { admit } from '../../operator/controller/failover.ts';
import { switchReplicationLogin } from '../../operator/controller/replication-user.ts';
import { Connections, parseInfo } from '../../operator/redis/connections.ts';
import { servesReplication } from '../../operator/redis/observe.ts';
import { REPLICATION_USER } from '../../operator/resources/names.ts';
import { authConf } from '../../operator/resources/redis-config.ts';
import { writeUntilStopped } from '../helpers/node-writer.ts';
import { type RedisNode, startPair } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

const started: RedisNode[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.stop()));
});

describe.each([
  ['persistence off (the default): nodes start quarantined', false],
  ['persistence on', true],
])('the replication user switched on and off under writes, %s', (_label, persistence) => {
  it('replicas sign in as the user of the moment, a password rotation leaves them alone, nothing acknowledged is lost', async () => {
    const redis = withDefaults({
      redis: { persistence: { enabled: persistence }, auth: { users: { replication: true } } },
    }).redis;
    // The nodes start as before the switch: no replication user yet.
    const conf = authConf(redis, ['pw']);
    const { master, replica, A, B } = await startPair(conf);
    started.push(master, replica);
    let conns = new Connections({ password: 'pw', timeoutMs: 2000 });
    // The master holds the data: it is admitted (a no-op with persistence); the replica is not.
    await admit(conns, [A]);
    await conns.call(B, 'REPLICAOF', master.host, master.port);
    const w = writeUntilStopped(() => conns, A);

    /** Cuts the replica's link (unless `cut` is false) and waits for it to sign in again as `user`. */
    const replicatesAs = async (user: string, cut = true) => {
      if (cut) await conns.call(A, 'CLIENT', 'KILL', 'TYPE', 'replica');
      await waitFor(
        `the replica to sync again, signed in as ${user}`,
        async () => {
          const link = parseInfo(await conns.call<string>(B, 'INFO', 'replication'));
          const replicas = await conns.call<string>(A, 'CLIENT', 'LIST', 'TYPE', 'replica');
          return link.master_link_status === 'up' && replicas.includes(` user=${user} `);
        },
        10_000,
        50,
      );
      // No node refused anyone a command or a login.
      for (const node of [A, B]) expect(await conns.call(node, 'ACL', 'LOG'), node).toEqual([]);
    };
    const servesAs = async (addr: string, user: string) =>
      servesReplication(await conns.call<unknown[]>(addr, 'ACL', 'GETUSER', user));

    await replicatesAs('default', false);

    // On: both nodes learn the user, then sign in as it.
    const on = await switchReplicationLogin(conns, [A, B], {
      as: 'replication-user',
      password: 'rpw',
    });
    expect(on).toEqual({ switched: 2, failed: [] });
    // The user serves replication where default does: on the master; the never-admitted replica
    // (persistence off) stays quarantined for both users.
    expect(await servesAs(A, REPLICATION_USER)).toBe(true);
    expect(await servesAs(B, REPLICATION_USER)).toBe(persistence);
    expect(await servesAs(B, 'default')).toBe(persistence);
    await replicatesAs(REPLICATION_USER);

    // The user replicates and does nothing else.
    const client = new Redis({
      host: master.host,
      port: master.port,
      username: REPLICATION_USER,
      password: 'rpw',
      lazyConnect: true,
      maxRetriesPerRequest: 0,
      enableReadyCheck: false, // its INFO is refused
    });
    try {
      await client.connect();
      await expect(client.call('GET', 'w:0')).rejects.toThrow(/NOPERM/);
      await expect(client.call('SET', 'x', '1')).rejects.toThrow(/NOPERM/);
      await expect(client.call('FLUSHALL')).rejects.toThrow(/NOPERM/);
      await expect(client.call('CONFIG', 'GET', 'masterauth')).rejects.toThrow(/NOPERM/);
      await expect(client.call('ACL', 'LIST')).rejects.toThrow(/NOPERM/);
    } finally {
      client.disconnect();
    }
    await conns.call(A, 'ACL', 'LOG', 'RESET');

    // A rotation of the default password: masterauth stays the user's, replication holds.
    let plan = planAuth({ password: 'pw' }, 'pw2');
    const rotate = async () => {
      const step = await carryOutAuth(
        plan,
        [A, B],
        [],
        { timeoutMs: 2000, ownReplicationUser: true },
        (line) => expect.fail(line),
      );
      plan = step.plan;
    };
    await rotate(); // introduce: both passwords accepted
    const old = conns;
    conns = new Connections({ password: 'pw2', timeoutMs: 2000 });
    old.close();
    await rotate(); // retire: only pw2
    expect(plan).toEqual({ kind: 'steady', current: 'pw2' });
    for (const node of [A, B])
      expect(await conns.call(node, 'CONFIG', 'GET', 'masterauth')).toEqual(['masterauth', 'rpw']);
    await replicatesAs(REPLICATION_USER);

    // Off: both sign in as default again, then the user is deleted (which cuts the link).
    const off = await switchReplicationLogin(conns, [A, B], { as: 'default', password: 'pw2' });
    expect(off).toEqual({ switched: 2, failed: [] });
    for (const node of [A, B])
      expect(await conns.call(node, 'ACL', 'GETUSER', REPLICATION_USER)).toBeNull();
    await replicatesAs('default', false);

    const { acked, failed } = await w.stop();
    expect(failed).toBe(0);
    expect(acked).toBeGreaterThan(100);
    await conns.call(A, 'WAIT', 1, 5000);
    const keys = Array.from({ length: acked }, (_, i) => `w:${i}`);
    let present = 0;
    for (let i = 0; i < keys.length; i += 1000)
      present += await conns.call<number>(B, 'EXISTS', ...keys.slice(i, i + 1000));
    expect(present).toBe(acked);
    conns.close();
  }, 60_000);
});
