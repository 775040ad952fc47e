import { describe, expect, it } from 'vitest';
import { type CacheCluster, withDefaults } from '../../operator/api/types.ts';
import { redisCertificate } from '../../operator/resources/certificate.ts';
import { tlsSecretName } from '../../operator/resources/names.ts';
import { CA_VERSION_ANNOTATION, proxyDeployment } from '../../operator/resources/proxy.ts';
import { configHash, redisConf } from '../../operator/resources/redis-config.ts';
import { shardStatefulSet } from '../../operator/resources/redis-shard.ts';

const cc = (tls: boolean, exporter = false): CacheCluster => ({
  apiVersion: 'tiercache.io/v1alpha1',
  kind: 'CacheCluster',
  metadata: { name: 'cache', namespace: 'apps', uid: 'u', generation: 1 },
  spec: withDefaults({
    redis: {
      ...(tls ? { tls: { enabled: true, secretName: 'redis-tls' } } : {}),
      exporter: { enabled: exporter },
    },
    proxies: [{ name: 'eu', upstream: 'tmdb', region: 'eu' }],
  }),
});

describe('a CacheCluster with TLS', () => {
  it('serves TLS only on the Redis port, for clients, replication and the bus', () => {
    const conf = redisConf(cc(true).spec.redis).split('\n');
    expect(conf).toEqual(
      expect.arrayContaining([
        'port 0',
        'tls-port 6379',
        'tls-cert-file /etc/redis-tls/tls.crt',
        'tls-key-file /etc/redis-tls/tls.key',
        'tls-ca-cert-file /etc/redis-tls/ca.crt',
        'tls-cluster yes',
        'tls-replication yes',
        'tls-auth-clients optional',
      ]),
    );
    expect(conf).not.toContain('port 6379');
    expect(redisConf(cc(false).spec.redis)).not.toMatch(/tls-/);
    expect(configHash(cc(true).spec.redis)).not.toBe(configHash(cc(false).spec.redis));
  });

  it('mounts the certificate Secret in every Redis pod, and the exporter speaks TLS to its node', () => {
    const c = cc(true, true);
    const pod = shardStatefulSet(c, 0, c.spec.redis, { zones: 0 }).spec!.template.spec!;
    expect(pod.volumes).toContainEqual({
      name: 'tls',
      secret: { secretName: 'redis-tls', defaultMode: 0o400 },
    });
    const redis = pod.containers.find((x) => x.name === 'redis')!;
    expect(redis.volumeMounts).toContainEqual({
      name: 'tls',
      mountPath: '/etc/redis-tls',
      readOnly: true,
    });
    const exporter = pod.containers.find((x) => x.name === 'exporter')!;
    expect(exporter.env).toContainEqual({ name: 'REDIS_ADDR', value: 'rediss://localhost:6379' });
    const plain = cc(false, true);
    const plainPod = shardStatefulSet(plain, 0, plain.spec.redis, { zones: 0 }).spec!.template
      .spec!;
    expect(plainPod.volumes!.map((v) => v.name)).not.toContain('tls');
  });

  it('gives the proxies the CA alone and the name to check, and rolls them when the CA changes', () => {
    const c = cc(true);
    const login = { as: 'default' as const, password: 'pw' };
    const d = proxyDeployment(c, c.spec.proxies[0]!, 'tiercache:0.1.0', login, {
      secretName: 'redis-tls',
      ca: 'CA-ONE',
    });
    const pod = d.spec!.template.spec!;
    // Only ca.crt of the Secret: a proxy never holds the nodes' private key.
    expect(pod.volumes).toEqual([
      {
        name: 'redis-ca',
        secret: { secretName: 'redis-tls', items: [{ key: 'ca.crt', path: 'ca.crt' }] },
      },
    ]);
    expect(pod.containers[0]!.env).toEqual(
      expect.arrayContaining([
        { name: 'REDIS_TLS', value: 'true' },
        { name: 'REDIS_TLS_CA_FILE', value: '/etc/redis-tls/ca.crt' },
        { name: 'REDIS_TLS_SERVER_NAME', value: 'cache-redis.apps.svc' },
      ]),
    );
    const other = proxyDeployment(c, c.spec.proxies[0]!, 'tiercache:0.1.0', login, {
      secretName: 'redis-tls',
      ca: 'CA-TWO',
    });
    const caVersion = (x: typeof d) =>
      x.spec!.template.metadata!.annotations![CA_VERSION_ANNOTATION];
    expect(caVersion(d)).toMatch(/^[0-9a-f]{12}$/);
    expect(caVersion(other)).not.toBe(caVersion(d));

    const plain = cc(false);
    const p = proxyDeployment(plain, plain.spec.proxies[0]!, 'tiercache:0.1.0', login);
    expect(p.spec!.template.spec!.volumes).toBeUndefined();
    expect(p.spec!.template.spec!.containers[0]!.env!.map((e) => e.name)).not.toContain(
      'REDIS_TLS',
    );
  });
});

describe('a CacheCluster whose certificate cert-manager issues (tls.issuerRef)', () => {
  const issued = (secretName?: string): CacheCluster => ({
    apiVersion: 'tiercache.io/v1alpha1',
    kind: 'CacheCluster',
    metadata: { name: 'cache', namespace: 'apps', uid: 'u', generation: 1 },
    spec: withDefaults({
      redis: {
        tls: {
          enabled: true,
          issuerRef: { name: 'redis-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' },
          ...(secretName ? { secretName } : {}),
        },
      },
      proxies: [{ name: 'eu', upstream: 'tmdb', region: 'eu' }],
    }),
  });

  it('asks for every name clients check, for server and client use, owned by the CacheCluster', () => {
    const cert = redisCertificate(issued(), issued().spec.redis.tls.issuerRef!);
    expect(cert.metadata?.name).toBe('cache-redis-tls');
    expect(cert.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'CacheCluster',
      name: 'cache',
    });
    expect(cert.spec).toMatchObject({
      secretName: 'cache-redis-tls',
      dnsNames: [
        'cache-redis.apps.svc',
        '*.cache-redis.apps.svc',
        'cache-redis.apps.svc.cluster.local',
        '*.cache-redis.apps.svc.cluster.local',
      ],
      usages: ['server auth', 'client auth', 'digital signature', 'key encipherment'],
      issuerRef: { name: 'redis-ca', kind: 'ClusterIssuer', group: 'cert-manager.io' },
    });
    expect(
      redisCertificate(issued('mine'), issued().spec.redis.tls.issuerRef!).spec.secretName,
    ).toBe('mine');
  });

  it('mounts the Secret cert-manager writes in every Redis pod', () => {
    const set = shardStatefulSet(issued(), 0, issued().spec.redis, { zones: 0 });
    const volumes = set.spec!.template.spec!.volumes!;
    expect(volumes.find((v) => v.name === 'tls')?.secret?.secretName).toBe('cache-redis-tls');
    expect(tlsSecretName(issued('mine'))).toBe('mine');
  });
});
