import { describe, expect, it } from 'vitest';
import { withDefaults } from '../../operator/api/types.ts';
import { introduceCommands, retireCommands } from '../../operator/controller/auth-plan.ts';
import {
  defaultUserStep,
  keepUsersWhileDefaultOff,
} from '../../operator/controller/default-user.ts';
import { authConf, authSecret, probeUserSetuser } from '../../operator/resources/redis-config.ts';

const ALL_USERS = { proxies: true, replication: true, operator: true };
const disabled = withDefaults({
  redis: { persistence: { enabled: true }, auth: { users: ALL_USERS, defaultUser: 'disabled' } },
}).redis;
const PROBE_RULES = 'resetkeys resetchannels -@all +ping +info +cluster|info';

describe('default disabled (auth.defaultUser)', () => {
  it('is switched off only once no client needs it, and on again before any client goes back', () => {
    const step = (o: Partial<Parameters<typeof defaultUserStep>[0]>) =>
      defaultUserStep({
        wantedOff: true,
        storedOff: false,
        nodesOn: 6,
        nodesOff: 0,
        clientsOnOwnUsers: true,
        ...o,
      });
    expect(step({})).toBe('switch-off');
    // A client still on default (a proxy rolling, a rotation, a node not answering): wait.
    expect(step({ clientsOnOwnUsers: false })).toBe('keep');
    // Off already: only a node that came up with it on is switched off again.
    expect(step({ storedOff: true, nodesOn: 0, clientsOnOwnUsers: false })).toBe('keep');
    expect(step({ storedOff: true, nodesOn: 1, clientsOnOwnUsers: false })).toBe('switch-off');
    // The spec says password again: on first, whatever else is going on.
    expect(step({ wantedOff: false, storedOff: true, clientsOnOwnUsers: false })).toBe('switch-on');
    expect(step({ wantedOff: false })).toBe('keep');
    // On already, but a node came up from a copy of auth.conf that lags: it is switched on.
    expect(step({ wantedOff: false, nodesOn: 5, nodesOff: 1 })).toBe('switch-on');
  });

  it('keeps auth and every user on while the nodes have default off, whatever the spec says now', () => {
    const { redis } = withDefaults({ redis: { auth: { enabled: false } } });
    expect(keepUsersWhileDefaultOff(redis, false)).toBe(redis);
    expect(keepUsersWhileDefaultOff(redis, true).auth).toEqual({
      ...redis.auth,
      enabled: true,
      users: ALL_USERS,
    });
  });

  it("auth.conf declares the probe user with default's passwords, and default off once it is", () => {
    const users = { operator: 'o', proxy: 'p', replication: 'r' };
    const before = authConf(disabled, ['pw'], users);
    expect(before).toMatch(/^requirepass "pw"\n/);
    expect(before).toContain(`user tiercache-probe on ">pw" ${PROBE_RULES}\n`);
    const after = authConf(disabled, ['pw', 'next'], users, true);
    expect(after).toMatch(/^user default off ">pw" ">next" ~\* &\* \+@all\n/);
    expect(after).toContain(`user tiercache-probe on ">pw" ">next" ${PROBE_RULES}\n`);
    // With the spec back on password but the nodes still off, the probe user stays.
    const { redis } = withDefaults({ redis: { auth: { users: ALL_USERS } } });
    expect(authConf(redis, ['pw'], users, true)).toContain('user tiercache-probe on');
    expect(authConf(redis, ['pw'], users)).not.toContain('tiercache-probe');
  });

  it('is recorded in the auth Secret, which a restarted operator reads', () => {
    const cc = { metadata: { name: 'cache', namespace: 'ns', uid: 'u' } } as never;
    const secret = authSecret(cc, disabled, { password: 'pw', defaultOff: true });
    expect(Buffer.from(secret.data!.default!, 'base64').toString()).toBe('off');
    expect(authSecret(cc, disabled, { password: 'pw' }).data!.default).toBeUndefined();
  });

  it('a rotation reaches the probe user as it reaches default', () => {
    expect(introduceCommands('old', 'new', { ownReplicationUser: true, probeUser: true })).toEqual([
      ['ACL', 'SETUSER', 'default', '>new'],
      ['ACL', 'SETUSER', 'tiercache-probe', '>new'],
    ]);
    expect(retireCommands('new', { ownReplicationUser: true, probeUser: true })).toEqual([
      ['ACL', 'SETUSER', 'default', 'resetpass', '>new'],
      ['ACL', 'SETUSER', 'tiercache-probe', 'resetpass', '>new'],
    ]);
    expect(probeUserSetuser(['a', 'b'])).toEqual(
      `ACL SETUSER tiercache-probe on resetpass >a >b ${PROBE_RULES}`.split(' '),
    );
  });
});
