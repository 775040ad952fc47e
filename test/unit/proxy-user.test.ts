import type { V1Deployment } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { type CacheCluster, withDefaults } from '../../operator/api/types.ts';
import {
  chooseProxyLogin,
  noProxyOnUser,
  proxyDoneWith,
} from '../../operator/controller/proxy-user.ts';
import { desiredObjects } from '../../operator/resources/desired.ts';
import { PROXY_USER } from '../../operator/resources/names.ts';
import {
  AUTH_VERSION_ANNOTATION,
  type ProxyLogin,
  passwordVersion,
  proxyDeployment,
} from '../../operator/resources/proxy.ts';
import { authConf, NO_PASSWORD, proxyUserSetuser } from '../../operator/resources/redis-config.ts';

const cc = (users: boolean): CacheCluster => ({
  apiVersion: 'tiercache.io/v1alpha1',
  kind: 'CacheCluster',
  metadata: { name: 'cache', namespace: 'apps', uid: 'u', generation: 1 },
  spec: withDefaults({
    redis: { auth: { users: { proxies: users } } },
    proxies: [{ name: 'eu', upstream: 'tmdb', region: 'eu' }],
  }),
});

const done = { observedGeneration: 1, updatedReplicas: 2, availableReplicas: 2, replicas: 2 };

/** The operator's Deployment for `login`, with every pod on its template or not. */
function deployment(login: ProxyLogin, rolled = true): V1Deployment {
  const c = cc(login.as === 'proxy-user');
  const d = proxyDeployment(c, c.spec.proxies[0]!, 'tiercache:0.1.0', login);
  d.metadata!.generation = 1;
  d.status = rolled ? done : { ...done, updatedReplicas: 1 };
  return d;
}

const env = (d: V1Deployment) =>
  Object.fromEntries(
    d.spec!.template.spec!.containers[0]!.env!.map((e) => [
      e.name,
      e.value ?? `${e.valueFrom?.secretKeyRef?.name}/${e.valueFrom?.secretKeyRef?.key}`,
    ]),
  );

describe("the proxies' own ACL user", () => {
  it('is declared in auth.conf and its Secret only when wanted, with its keys and channel alone', () => {
    const on = cc(true);
    const conf = authConf(on.spec.redis, ['pw'], { proxy: 'user-pw' });
    const line = conf.split('\n').find((l) => l.startsWith(`user ${PROXY_USER} `))!;
    expect(line).toContain('">user-pw"');
    expect(line).toContain('resetkeys ~tc:* ~tc-lease:* ~tc-backoff:* ~tc-rate:*');
    expect(line).toContain('resetchannels &tiercache:invalidate');
    expect(line).toContain('-@all');
    expect(line).not.toMatch(/\+@|\+flushall|\+config|\+cluster\|(reset|forget|failover)/);
    expect(authConf(cc(false).spec.redis, ['pw'], { proxy: 'user-pw' })).not.toContain(PROXY_USER);
    // The live command says the same as the file.
    expect(proxyUserSetuser('user-pw').slice(0, 6)).toEqual([
      'ACL',
      'SETUSER',
      PROXY_USER,
      'on',
      'resetpass',
      '>user-pw',
    ]);
    expect(proxyUserSetuser('user-pw').slice(6).join(' ')).toBe(
      line.slice(line.indexOf('resetkeys')),
    );

    const inputs = (c: CacheCluster, proxyLogin: ProxyLogin) => ({
      spec: c.spec,
      shards: 1,
      auth: { password: 'pw' },
      adminToken: 't',
      exporterPassword: 'e',
      proxyUserPassword: 'user-pw',
      proxyLogin,
      placement: { zones: 0 },
      proxyImage: 'tiercache:0.1.0',
    });
    const names = (c: CacheCluster, login: ProxyLogin) =>
      desiredObjects(c, inputs(c, login)).map((o) => `${o.kind}/${o.metadata!.name}`);
    expect(names(on, { as: 'proxy-user', password: 'user-pw' })).toContain(
      'Secret/cache-redis-proxy',
    );
    expect(names(cc(false), { as: 'default', password: 'pw' })).not.toContain(
      'Secret/cache-redis-proxy',
    );
  });

  it('is what the proxies log in as, from its own Secret, and switching to it rolls them', () => {
    const user = deployment({ as: 'proxy-user', password: 'user-pw' });
    const plain = deployment({ as: 'default', password: 'pw' });
    expect(env(user)).toMatchObject({
      REDIS_USERNAME: PROXY_USER,
      REDIS_PASSWORD: 'cache-redis-proxy/password',
    });
    expect(env(plain)).toMatchObject({
      REDIS_USERNAME: 'default',
      REDIS_PASSWORD: 'cache-redis-auth/password',
    });
    const version = (d: V1Deployment) =>
      d.spec!.template.metadata!.annotations![AUTH_VERSION_ANNOTATION];
    expect(version(user)).not.toBe(version(plain));
    expect(version(user)).not.toContain('user-pw');
  });

  it('is used only once every running node knows it, and kept while a node is down', () => {
    const base = { current: 'pw', userPassword: 'user-pw' };
    const onDefault = [deployment({ as: 'default', password: 'pw' })];
    const onUser = [deployment({ as: 'proxy-user', password: 'user-pw' })];
    const asUser = { as: 'proxy-user', password: 'user-pw' };
    const asDefault = { as: 'default', password: 'pw' };
    expect(
      chooseProxyLogin({ ...base, wanted: true, nodesKnowUser: false, proxies: onDefault }),
    ).toEqual(asDefault);
    expect(
      chooseProxyLogin({ ...base, wanted: true, nodesKnowUser: true, proxies: onDefault }),
    ).toEqual(asUser);
    // A node restarting a moment does not roll the proxies back to default.
    expect(
      chooseProxyLogin({ ...base, wanted: true, nodesKnowUser: false, proxies: onUser }),
    ).toEqual(asUser);
    // Turned off: back to default at once (default always works).
    expect(
      chooseProxyLogin({ ...base, wanted: false, nodesKnowUser: true, proxies: onUser }),
    ).toEqual(asDefault);
    // With auth off there is no user to log in as.
    expect(
      chooseProxyLogin({
        ...base,
        current: NO_PASSWORD,
        wanted: true,
        nodesKnowUser: true,
        proxies: onUser,
      }),
    ).toEqual({ as: 'default', password: NO_PASSWORD });
  });

  it('is forgotten only when no proxy pod runs with it, and frees a password rotation from the proxies', () => {
    const userRolled = deployment({ as: 'proxy-user', password: 'user-pw' });
    const userRolling = deployment({ as: 'proxy-user', password: 'user-pw' }, false);
    const backRolled = deployment({ as: 'default', password: 'pw' });
    const backRolling = deployment({ as: 'default', password: 'pw' }, false);
    expect(noProxyOnUser([backRolled])).toBe(true);
    expect(noProxyOnUser([backRolling])).toBe(false);
    expect(noProxyOnUser([userRolled])).toBe(false);

    // Rotating the default password: proxies on their own user need not roll; one still
    // rolling onto it may have old pods using the default password.
    const next = passwordVersion('next');
    expect(proxyDoneWith(userRolled, next)).toBe(true);
    expect(proxyDoneWith(userRolling, next)).toBe(false);
    expect(proxyDoneWith(backRolled, next)).toBe(false);
    expect(proxyDoneWith(deployment({ as: 'default', password: 'next' }), next)).toBe(true);
  });
});
