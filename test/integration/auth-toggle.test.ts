/**
 * Turning auth on and off, live, with real redis-server processes: a master and its replica
 * start from the operator's auth.conf without a password, the operator's own rotation steps
 * (carryOutAuth) turn the password on and off again, and at every step the clients of the
 * moment (the proxies before and after their roll) are let in, replication keeps working with
 * the masterauth of the moment (its link is cut and must come back), and no key is lost.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { withDefaults } from '../../operator/api/types.ts';
import { carryOutAuth } from '../../operator/controller/auth.ts';
import { type AuthPlan, planAuth, storedOf } from '../../operator/controller/auth-plan.ts';
import { Connections, parseInfo } from '../../operator/redis/connections.ts';
import { authConf, NO_PASSWORD } from '../../operator/resources/redis-config.ts';
import { type RedisNode, startPair } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

const started: RedisNode[] = [];
afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.stop()));
});

/** Whether a client with `password` (none: NO_PASSWORD) may run commands on `addr`. */
async function letIn(addr: string, password: string): Promise<boolean> {
  const conns = new Connections({ password, timeoutMs: 2000 });
  try {
    await conns.call(addr, 'EXISTS', 'k0');
    return true;
  } catch {
    return false;
  } finally {
    conns.close();
  }
}

describe('auth turned on and off on running nodes', () => {
  it('never shuts out the clients of the moment, keeps replication, loses no key', async () => {
    // Persistence on: no quarantine to admit, so the test is about the passwords alone.
    const redis = withDefaults({ redis: { persistence: { enabled: true } } }).redis;
    const conf = authConf(redis, [NO_PASSWORD]);
    const { master, replica, A, B } = await startPair(conf);
    started.push(master, replica);
    const admin = new Connections({ password: NO_PASSWORD, timeoutMs: 2000 });
    await admin.call(B, 'REPLICAOF', master.host, master.port);
    for (let i = 0; i < 100; i++) await admin.call(A, 'SET', `k${i}`, 'v');
    admin.close();

    /** Cuts the replica's link; it must sync again with the masterauth it has now. */
    const replicationHolds = async (password: string, key: string) => {
      const conns = new Connections({ password, timeoutMs: 2000 });
      try {
        await conns.call(A, 'CLIENT', 'KILL', 'TYPE', 'replica');
        await conns.call(A, 'SET', key, 'v');
        await waitFor(
          `the replica to sync again and hold ${key}`,
          async () =>
            parseInfo(await conns.call<string>(B, 'INFO', 'replication')).master_link_status ===
              'up' && (await conns.call(B, 'EXISTS', key)) === 1,
          10_000,
          50,
        );
        return await conns.call<number>(B, 'DBSIZE');
      } finally {
        conns.close();
      }
    };
    const step = async (plan: AuthPlan) =>
      (
        await carryOutAuth(
          plan,
          [A, B],
          [],
          { timeoutMs: 2000, ownReplicationUser: false },
          (line) => expect.fail(line),
        )
      ).plan;

    // On: replicas learn the password; old proxies (none) and rolled ones (pw) are let in.
    let plan = await step(planAuth({ password: NO_PASSWORD }, 'pw'));
    expect(plan).toEqual({ kind: 'retire', current: 'pw', retiring: NO_PASSWORD });
    expect(await letIn(A, NO_PASSWORD)).toBe(true);
    expect(await letIn(A, 'pw')).toBe(true);
    expect(await replicationHolds('pw', 'on-1')).toBe(101);
    // Every proxy rolled: the password is required.
    plan = await step(plan);
    expect(plan).toEqual({ kind: 'steady', current: 'pw' });
    expect(await letIn(A, NO_PASSWORD)).toBe(false);
    expect(await letIn(B, NO_PASSWORD)).toBe(false);
    expect(await letIn(A, 'pw')).toBe(true);
    expect(await replicationHolds('pw', 'on-2')).toBe(102);

    // Off: nodes accept no password first; proxies still sending pw are let in too.
    plan = await step(planAuth(storedOf(plan), NO_PASSWORD));
    expect(plan).toEqual({ kind: 'retire', current: NO_PASSWORD, retiring: 'pw' });
    expect(await letIn(A, 'pw')).toBe(true);
    expect(await letIn(A, NO_PASSWORD)).toBe(true);
    expect(await replicationHolds(NO_PASSWORD, 'off-1')).toBe(103);
    plan = await step(plan);
    expect(plan).toEqual({ kind: 'steady', current: NO_PASSWORD });
    expect(await letIn(B, NO_PASSWORD)).toBe(true);
    // masterauth cleared: the replica syncs without sending one.
    const conns = new Connections({ password: NO_PASSWORD, timeoutMs: 2000 });
    expect(await conns.call(B, 'CONFIG', 'GET', 'masterauth')).toEqual(['masterauth', '']);
    conns.close();
    expect(await replicationHolds(NO_PASSWORD, 'off-2')).toBe(104);
  });
});
