import type { V1Deployment } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { withDefaults } from '../../operator/api/types.ts';
import {
  acceptedPasswords,
  introduceCommands,
  planAuth,
  retireCommands,
  rolledOut,
  storedOf,
} from '../../operator/controller/auth-plan.ts';
import { servesReplication } from '../../operator/redis/observe.ts';
import { AUTH_VERSION_ANNOTATION, passwordVersion } from '../../operator/resources/proxy.ts';
import {
  authConf,
  NO_PASSWORD,
  operatorUserSetuser,
  replicationUserSetuser,
} from '../../operator/resources/redis-config.ts';

describe('password rotation plan', () => {
  it('walks a new password in and the old one out, never leaving a moment where only one side knows it', () => {
    // The user's Secret now says "new"; the nodes and clients use "old".
    const introduce = planAuth({ password: 'old' }, 'new');
    expect(introduce).toEqual({ kind: 'introduce', current: 'old', next: 'new' });
    // While nodes learn it, clients keep "old" and a restarting node accepts both.
    expect(storedOf(introduce)).toEqual({ password: 'old', next: 'new' });
    expect(acceptedPasswords(introduce)).toEqual(['old', 'new']);
    // Once every node accepts "new", clients switch and the old one is retired after the roll.
    const retire = planAuth({ password: 'new', retiring: 'old' }, 'new');
    expect(retire).toEqual({ kind: 'retire', current: 'new', retiring: 'old' });
    expect(acceptedPasswords(retire)).toEqual(['new', 'old']);
    expect(planAuth({ password: 'new' }, 'new')).toEqual({ kind: 'steady', current: 'new' });
  });

  it('a new cluster starts steady with the desired password', () => {
    expect(planAuth({}, 'gen')).toEqual({ kind: 'steady', current: 'gen' });
  });

  it('a deleted generated Secret: the password the nodes last accepted is rotated out, not lost', () => {
    expect(planAuth({}, 'fresh', 'remembered')).toEqual({
      kind: 'introduce',
      current: 'remembered',
      next: 'fresh',
    });
  });

  it('a password changed again mid-rotation is introduced from the one clients use', () => {
    expect(planAuth({ password: 'b', retiring: 'a' }, 'c')).toEqual({
      kind: 'introduce',
      current: 'b',
      next: 'c',
    });
  });
});

describe('turning auth on or off: a rotation from or to no password', () => {
  it('turns auth on: replicas learn the password, the proxies roll with it, then nodes require it', () => {
    const on = planAuth({ password: NO_PASSWORD }, 'pw');
    expect(on).toEqual({ kind: 'introduce', current: NO_PASSWORD, next: 'pw' });
    // No `>pw` on the user: it would end nopass and shut out the proxies that send none.
    expect(introduceCommands(NO_PASSWORD, 'pw')).toEqual([
      ['CONFIG', 'SET', 'masteruser', 'default', 'masterauth', 'pw'],
    ]);
    expect(planAuth({ password: 'pw', retiring: NO_PASSWORD }, 'pw')).toEqual({
      kind: 'retire',
      current: 'pw',
      retiring: NO_PASSWORD,
    });
    expect(retireCommands('pw')).toEqual([
      ['ACL', 'SETUSER', 'default', 'resetpass', '>pw'],
      ['CONFIG', 'SET', 'masteruser', 'default', 'masterauth', 'pw'],
    ]);
  });

  it('turns auth off: nodes accept none first, the proxies roll without it, then masterauth goes', () => {
    expect(planAuth({ password: 'pw' }, NO_PASSWORD)).toEqual({
      kind: 'introduce',
      current: 'pw',
      next: NO_PASSWORD,
    });
    expect(introduceCommands('pw', NO_PASSWORD)).toEqual([['ACL', 'SETUSER', 'default', 'nopass']]);
    expect(retireCommands(NO_PASSWORD)).toEqual([
      ['ACL', 'SETUSER', 'default', 'nopass'],
      ['CONFIG', 'SET', 'masterauth', ''],
    ]);
    expect(planAuth({ password: NO_PASSWORD }, NO_PASSWORD)).toEqual({
      kind: 'steady',
      current: NO_PASSWORD,
    });
  });

  it('a change given up half-way: the nodes forget what they were taught', () => {
    // Auth turned off, then on again before the nodes had all been told: back to "pw" only.
    expect(planAuth({ password: 'pw', next: NO_PASSWORD }, 'pw')).toEqual({
      kind: 'retire',
      current: 'pw',
      retiring: NO_PASSWORD,
    });
    expect(planAuth({ password: 'a', next: 'b' }, 'a')).toEqual({
      kind: 'retire',
      current: 'a',
      retiring: 'b',
    });
  });
});

describe('auth.conf during a rotation', () => {
  it('accepts every password of the plan, replicates with the one in use', () => {
    const durable = withDefaults({ redis: { persistence: { enabled: true } } }).redis;
    expect(authConf(durable, ['new', 'old'])).toBe(
      'user default on ">new" ">old" ~* &* +@all\nmasteruser default\nmasterauth "new"\n',
    );
    const { redis } = withDefaults({});
    expect(authConf(redis, ['a', 'b'])).toBe(
      'user default on ">a" ">b" ~* &* +@all -sync -psync\nmasteruser default\nmasterauth "a"\n',
    );
  });

  it('accepts any password while auth is turned on or off', () => {
    const durable = withDefaults({ redis: { persistence: { enabled: true } } }).redis;
    // Turning auth off: the password still in use, nodes already accept none.
    expect(authConf(durable, ['pw', NO_PASSWORD])).toBe(
      'user default on nopass ~* &* +@all\nmasteruser default\nmasterauth "pw"\n',
    );
    // Turning it on: clients may send the new password, replicas send none yet.
    expect(authConf(durable, [NO_PASSWORD, 'pw'])).toBe('user default on nopass ~* &* +@all\n');
  });
});

describe('replicas signing in as their own user (auth.users.replication)', () => {
  const users = { replication: true };
  it('auth.conf declares the user, quarantined like default without persistence, and replicates as it', () => {
    const { redis } = withDefaults({ redis: { auth: { users } } });
    expect(authConf(redis, ['pw'], { replication: 'r"pw' })).toBe(
      'user default on ">pw" ~* &* +@all -sync -psync\n' +
        'masteruser tiercache-replication\nmasterauth "r\\"pw"\n' +
        'user tiercache-replication on ">r\\"pw" resetkeys resetchannels -@all +ping +replconf\n',
    );
    const durable = withDefaults({
      redis: { auth: { users }, persistence: { enabled: true } },
    }).redis;
    expect(authConf(durable, ['pw'], { replication: 'r' })).toBe(
      'requirepass "pw"\n' +
        'masteruser tiercache-replication\nmasterauth "r"\n' +
        'user tiercache-replication on ">r" resetkeys resetchannels -@all +ping +replconf +sync +psync\n',
    );
  });

  it('a rotation of the default password leaves masterauth alone', () => {
    expect(introduceCommands('old', 'new', { ownReplicationUser: true })).toEqual([
      ['ACL', 'SETUSER', 'default', '>new'],
    ]);
    expect(retireCommands('new', { ownReplicationUser: true })).toEqual([
      ['ACL', 'SETUSER', 'default', 'resetpass', '>new'],
    ]);
  });

  it('a running node learns the user serving replication as its default user does', () => {
    expect(replicationUserSetuser('r', false)).toEqual(
      'ACL SETUSER tiercache-replication on resetpass >r resetkeys resetchannels -@all +ping +replconf'.split(
        ' ',
      ),
    );
    expect(replicationUserSetuser('r', true).slice(-2)).toEqual(['+sync', '+psync']);
  });

  it('reads whether a user may serve replication from its ACL rules, as Redis applies them', () => {
    const getuser = (commands: string) => ['flags', ['on'], 'commands', commands];
    expect(servesReplication(getuser('+@all'))).toBe(true);
    expect(servesReplication(getuser('+@all -sync -psync'))).toBe(false);
    expect(servesReplication(getuser('+@all -psync'))).toBe(false);
    expect(servesReplication(getuser('-@all +ping +replconf'))).toBe(false);
    expect(servesReplication(getuser('-@all +ping +replconf +sync +psync'))).toBe(true);
    expect(servesReplication(getuser('-@all +ping +replconf +sync'))).toBe(false);
  });
});

describe("the operator's own user (auth.users.operator)", () => {
  it('auth.conf declares it with every key and command but those that wipe data, stop the server or show traffic', () => {
    const durable = withDefaults({
      redis: { auth: { users: { operator: true } }, persistence: { enabled: true } },
    }).redis;
    expect(authConf(durable, ['pw'], { operator: 'o' })).toBe(
      'requirepass "pw"\nmasteruser default\nmasterauth "pw"\n' +
        'user tiercache-operator on ">o" resetkeys resetchannels ~* &* +@all -flushall -flushdb -shutdown -debug -monitor\n',
    );
    // Not wanted: not declared, whatever password is at hand.
    const off = withDefaults({ redis: { persistence: { enabled: true } } }).redis;
    expect(authConf(off, ['pw'], { operator: 'o' })).not.toContain('tiercache-operator');
  });

  it('a running node learns it as auth.conf declares it', () => {
    expect(operatorUserSetuser('o')).toEqual(
      'ACL SETUSER tiercache-operator on resetpass >o resetkeys resetchannels ~* &* +@all -flushall -flushdb -shutdown -debug -monitor'.split(
        ' ',
      ),
    );
  });
});

describe('a proxy Deployment rolled out to a password', () => {
  const deployment = (version: string, status: V1Deployment['status']): V1Deployment => ({
    metadata: { generation: 3 },
    spec: {
      replicas: 2,
      selector: {},
      template: { metadata: { annotations: { [AUTH_VERSION_ANNOTATION]: version } } },
    },
    status,
  });
  const v = passwordVersion('new');

  it('only when every pod runs the template that carries it', () => {
    const done = { observedGeneration: 3, updatedReplicas: 2, availableReplicas: 2, replicas: 2 };
    expect(rolledOut(deployment(v, done), v)).toBe(true);
    expect(rolledOut(deployment(passwordVersion('old'), done), v)).toBe(false);
    expect(rolledOut(deployment(v, { ...done, observedGeneration: 2 }), v)).toBe(false);
    // An old pod still running beside the new ones.
    expect(rolledOut(deployment(v, { ...done, replicas: 3 }), v)).toBe(false);
    expect(rolledOut(deployment(v, { ...done, availableReplicas: 1 }), v)).toBe(false);
  });

  it('the version never shows the password', () => {
    expect(v).not.toContain('new');
    expect(v).toMatch(/^[0-9a-f]{12}$/);
  });
});
