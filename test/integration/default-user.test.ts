/**
 * `default` switched off and on live (spec.redis.auth.defaultUser) on a real one-shard cluster
 * started from the operator's auth.conf, persistence off (nodes start quarantined) and on, a
 * writer signed in as the operator's user running throughout. Off: a new connection as default
 * is refused, the readiness probe still passes (as tiercache-probe, with default's password), a
 * replica replaced by one started from the auth.conf that says "off" comes up with default off
 * and syncs as the replication user; a password rotation carried out as the operator's user
 * reaches the probe user and leaves default off. On again: default signs in, the probe user is
 * deleted, and every write the master acknowledged is on the replica.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AuthSpec, withDefaults } from '../../operator/api/types.ts';
import { carryOutAuth } from '../../operator/controller/auth.ts';
import { planAuth } from '../../operator/controller/auth-plan.ts';
import { settleDefaultUser } from '../../operator/controller/default-user.ts';
import { admit } from '../../operator/controller/failover.ts';
import { Connections, parseInfo } from '../../operator/redis/connections.ts';
import { observe, userIsOn } from '../../operator/redis/observe.ts';
import { OPERATOR_USER, PROBE_USER } from '../../operator/resources/names.ts';
import { authConf } from '../../operator/resources/redis-config.ts';
import { writeUntilStopped } from '../helpers/node-writer.ts';
import { ReadyScript } from '../helpers/ready-script.ts';
import { type RedisNode, startNodes, startRedis } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

const started: RedisNode[] = [];
let probe: ReadyScript;
beforeAll(() => {
  probe = new ReadyScript();
  return () => probe.remove();
});
afterEach(async () => {
  await Promise.all(started.splice(0).map((n) => n.stop()));
});

const addrOf = (n: RedisNode) => `${n.host}:${n.port}`;
const USERS = { proxy: 'ppw', replication: 'rpw', operator: 'opw' };
const ALL_USERS = { proxies: true, replication: true, operator: true };

/** The readiness probe against `n`, with the mounted auth Secret's `password` file. */
const ready = (n: RedisNode, password: string) => probe.passes(n, { password });

/** Whether a new connection signed in as default with `password` is let in. */
async function defaultSignsIn(addr: string, password: string): Promise<boolean> {
  const asDefault = new Connections({ password, timeoutMs: 2000 });
  try {
    await asDefault.call(addr, 'PING');
    return true;
  } catch (err) {
    expect(String(err)).toMatch(/WRONGPASS/);
    return false;
  } finally {
    asDefault.close();
  }
}

describe.each([
  ['persistence off (the default): nodes start quarantined', false],
  ['persistence on', true],
])('default switched off and on under writes, %s', (_label, persistence) => {
  it('refuses default once off, the probe and replication go on without it, a node restarted and a rotation keep it off; on again, nothing acknowledged is lost', async () => {
    const redisWith = (auth: Partial<AuthSpec>) =>
      withDefaults({
        redis: { persistence: { enabled: persistence }, auth: { users: ALL_USERS, ...auth } },
      }).redis;
    const disabled = redisWith({ defaultUser: 'disabled' });
    // As before the switch: default on, every user declared (the probe's too: the spec wants it).
    const nodes = await startNodes(2, { cluster: true, config: authConf(disabled, ['pw'], USERS) });
    started.push(...nodes);
    const [master, first] = nodes as [RedisNode, RedisNode];
    const A = addrOf(master);
    let w: ReturnType<typeof writeUntilStopped> | undefined;
    const asOperator = new Connections({
      username: OPERATOR_USER,
      password: 'opw',
      timeoutMs: 2000,
    });
    try {
      // One shard: the master holds every slot, the first replica follows it.
      await admit(asOperator, [A]);
      await asOperator.call(A, 'CLUSTER', 'ADDSLOTSRANGE', 0, 16383);
      const masterId = await asOperator.call<string>(A, 'CLUSTER', 'MYID');
      const replicate = async (replica: RedisNode) => {
        const addr = addrOf(replica);
        await asOperator.call(addr, 'CLUSTER', 'MEET', master.host, master.port);
        await waitFor(
          `${addr} to know the master`,
          async () => (await asOperator.call<string>(addr, 'CLUSTER', 'NODES')).includes(masterId),
          10_000,
          50,
        );
        await asOperator.call(addr, 'CLUSTER', 'REPLICATE', masterId);
        await waitFor(
          `${addr} in sync with its master`,
          async () =>
            parseInfo(await asOperator.call<string>(addr, 'INFO', 'replication'))
              .master_link_status === 'up',
          20_000,
          50,
        );
      };
      await replicate(first);
      w = writeUntilStopped(() => asOperator, A);

      // Off: every node refuses new sign-ins as default; the probe passes as its own user.
      let view = await observe(asOperator, [A, addrOf(first)]);
      expect(view.reports.every((r) => r.defaultUserOn && r.aclUsers.includes(PROBE_USER))).toBe(
        true,
      );
      const off = await settleDefaultUser(asOperator, [A, addrOf(first)], view.reports, {
        redis: disabled,
        step: 'switch-off',
        storedOff: false,
        accepted: ['pw'],
      });
      expect(off).toMatchObject({
        defaultOff: true,
        failed: [],
        said: { reason: 'DefaultUserOff' },
      });
      for (const n of nodes) {
        expect(await defaultSignsIn(addrOf(n), 'pw'), addrOf(n)).toBe(false);
        expect(ready(n, 'pw'), addrOf(n)).toBe(true);
      }

      // The replica replaced by a node started from the auth.conf that says "off": default is off
      // from its start, it syncs as the replication user and the probe passes.
      const second = await startRedis({
        cluster: true,
        config: authConf(disabled, ['pw'], USERS, true),
      });
      started.push(second);
      const B = addrOf(second);
      expect(userIsOn(await asOperator.call<unknown[]>(B, 'ACL', 'GETUSER', 'default'))).toBe(
        false,
      );
      await replicate(second);
      expect(ready(second, 'pw')).toBe(true);
      expect(await asOperator.call<string>(A, 'CLIENT', 'LIST', 'TYPE', 'replica')).toMatch(
        / user=tiercache-replication /,
      );

      // A rotation, carried out as the operator's user: the probe user follows default's
      // passwords, and default stays off.
      let plan = planAuth({ password: 'pw' }, 'pw2');
      for (const phase of ['introduce', 'retire']) {
        expect(plan.kind).toBe(phase);
        plan = (
          await carryOutAuth(
            plan,
            [A, B],
            [],
            {
              timeoutMs: 2000,
              ownReplicationUser: true,
              probeUser: true,
              login: { username: OPERATOR_USER, password: 'opw' },
            },
            (line) => expect.fail(line),
          )
        ).plan;
      }
      expect(plan).toEqual({ kind: 'steady', current: 'pw2' });
      for (const n of [master, second]) {
        expect(ready(n, 'pw2'), addrOf(n)).toBe(true);
        expect(ready(n, 'pw'), addrOf(n)).toBe(false);
        expect(await defaultSignsIn(addrOf(n), 'pw2'), addrOf(n)).toBe(false);
      }

      // On again (the spec says password): default signs in, and the probe user goes next.
      const withPassword = redisWith({ defaultUser: 'password' });
      view = await observe(asOperator, [A, B]);
      const on = await settleDefaultUser(asOperator, [A, B], view.reports, {
        redis: withPassword,
        step: 'switch-on',
        storedOff: true,
        accepted: ['pw2'],
      });
      expect(on).toMatchObject({
        defaultOff: false,
        failed: [],
        said: { reason: 'DefaultUserOn' },
      });
      view = await observe(asOperator, [A, B]);
      expect(
        await settleDefaultUser(asOperator, [A, B], view.reports, {
          redis: withPassword,
          step: 'keep',
          storedOff: false,
          accepted: ['pw2'],
        }),
      ).toEqual({ defaultOff: false, failed: [] });
      for (const n of [master, second]) {
        expect(await defaultSignsIn(addrOf(n), 'pw2'), addrOf(n)).toBe(true);
        expect(await asOperator.call(addrOf(n), 'ACL', 'GETUSER', PROBE_USER)).toBeNull();
        expect(ready(n, 'pw2'), addrOf(n)).toBe(true);
      }

      const { acked, failed } = await w.stop();
      w = undefined;
      expect(failed).toBe(0);
      expect(acked).toBeGreaterThan(100);
      // Every acknowledged write is on the replica that came up with default off (the writer
      // wrote nothing else, and stopped after its last acknowledged write).
      await asOperator.call(A, 'WAIT', 2, 5000);
      expect(await asOperator.call<number>(B, 'DBSIZE')).toBe(acked);
    } finally {
      await w?.stop();
      asOperator.close();
    }
  }, 60_000);
});
