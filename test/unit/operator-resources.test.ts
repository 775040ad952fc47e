import type { V1Deployment, V1StatefulSet } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { type CacheCluster, withDefaults } from '../../operator/api/types.ts';
import { desiredObjects } from '../../operator/resources/desired.ts';
import { proxyDeployment } from '../../operator/resources/proxy.ts';
import {
  authConf,
  configHash,
  effectiveMaxMemory,
  liveSettings,
  NO_PASSWORD,
  quantityBytes,
  redisConf,
} from '../../operator/resources/redis-config.ts';
import { shardAffinity, shardStatefulSet } from '../../operator/resources/redis-shard.ts';
import { REDIS_DEFAULTS } from '../helpers/cachecluster-defaults.ts';

const cc = (spec: Parameters<typeof withDefaults>[0] = {}): CacheCluster => ({
  apiVersion: 'tiercache.io/v1alpha1',
  kind: 'CacheCluster',
  metadata: { name: 'cache', namespace: 'apps', uid: 'uid-1', generation: 1 },
  spec: withDefaults(spec),
});
const PASSWORD = 's3cr3t-p4ss';

describe('CacheCluster defaults', () => {
  it('match the CRD schema', () => {
    const spec = withDefaults({ proxies: [{ name: 'a', upstream: 'tmdb', region: 'r' }] });
    expect(spec.redis).toEqual(REDIS_DEFAULTS);
    expect(spec.proxies[0]!.replicas).toBe(2);
  });
});

describe('redis.conf', () => {
  it('turns the spec into cluster, memory and persistence settings', () => {
    const { redis } = withDefaults({ redis: { maxMemory: '1Gi', nodeTimeoutMs: 3000 } });
    const conf = redisConf(redis);
    expect(conf).toContain('cluster-enabled yes\n');
    expect(conf).toContain('cluster-node-timeout 3000\n');
    expect(conf).toContain(`maxmemory ${2 ** 30}\n`);
    expect(conf).toContain('maxmemory-policy allkeys-lru\n');
    expect(conf).toContain('appendonly no\n');
    expect(conf).toContain('save ""\n');
    expect(conf).not.toContain('appendfsync');
    expect(conf).toContain('include /etc/redis-auth/auth.conf\n');
    const durable = redisConf(
      withDefaults({ redis: { persistence: { enabled: true }, auth: { enabled: false } } }).redis,
    );
    expect(durable).toContain('appendonly yes\n');
    // The seed's schedule: a snapshot every 15 minutes when anything changed, AOF every second.
    expect(durable).toContain('save 900 1\nappendfsync everysec\n');
    // Auth off is what the included file says: turning auth on is no new revision.
    expect(durable).toContain('include /etc/redis-auth/auth.conf\n');
    const durableOn = withDefaults({ redis: { persistence: { enabled: true } } }).redis;
    expect(configHash(durableOn)).toBe(
      configHash(
        withDefaults({ redis: { persistence: { enabled: true }, auth: { enabled: false } } }).redis,
      ),
    );
  });

  it('starts nodes without persistence quarantined: no SYNC/PSYNC until the operator admits them', () => {
    const { redis } = withDefaults({});
    expect(authConf(redis, ['p"w'])).toBe(
      'user default on ">p\\"w" ~* &* +@all -sync -psync\nmasteruser default\nmasterauth "p\\"w"\n',
    );
    expect(authConf(redis, [NO_PASSWORD])).toBe(
      'user default on nopass ~* &* +@all -sync -psync\n',
    );
    const durable = withDefaults({ redis: { persistence: { enabled: true } } }).redis;
    expect(authConf(durable, ['pw'])).toBe(
      'requirepass "pw"\nmasteruser default\nmasterauth "pw"\n',
    );
    expect(redisConf(durable)).not.toContain('user default');
  });

  it('applies maxmemory, its policy and the persistence schedule live: changing them is no new revision', () => {
    const { redis } = withDefaults({});
    const bigger = withDefaults({
      redis: { maxMemory: '1Gi', evictionPolicy: 'volatile-lru' },
    }).redis;
    expect(configHash(bigger)).toBe(configHash(redis));
    expect(liveSettings(bigger)).toEqual({
      maxmemory: String(2 ** 30),
      'maxmemory-policy': 'volatile-lru',
      save: '',
    });
    const durable = withDefaults({ redis: { persistence: { enabled: true } } }).redis;
    const hourly = withDefaults({
      redis: { persistence: { enabled: true, snapshotEverySeconds: 3600, appendFsync: 'always' } },
    }).redis;
    expect(configHash(hourly)).toBe(configHash(durable));
    expect(liveSettings(hourly)).toMatchObject({ save: '3600 1', appendfsync: 'always' });
    const aofOnly = withDefaults({
      redis: { persistence: { enabled: true, snapshotEverySeconds: 0 } },
    }).redis;
    expect(liveSettings(aofOnly)).toMatchObject({ save: '', appendfsync: 'everysec' });
    expect(redisConf(bigger)).toContain(`maxmemory ${2 ** 30}\nmaxmemory-policy volatile-lru\n`);
    // A restart-only setting still makes a new revision.
    const timeout = withDefaults({ redis: { nodeTimeoutMs: 9000 } }).redis;
    expect(configHash(timeout)).not.toBe(configHash(redis));
  });

  it('keeps maxmemory under 75 % of the memory limit, leaving Redis room for its own overhead', () => {
    const fits = withDefaults({
      redis: { maxMemory: '256Mi', resources: { limits: { memory: '512Mi' } } },
    }).redis;
    expect(effectiveMaxMemory(fits)).toEqual({ bytes: 256 * 2 ** 20, capped: false });
    const tight = withDefaults({
      redis: { maxMemory: '512Mi', resources: { limits: { memory: '512Mi' } } },
    }).redis;
    expect(effectiveMaxMemory(tight)).toEqual({ bytes: 384 * 2 ** 20, capped: true });
    expect(liveSettings(tight).maxmemory).toBe(String(384 * 2 ** 20));
  });

  it('reads Kubernetes quantities', () => {
    expect(quantityBytes('256Mi')).toBe(256 * 2 ** 20);
    expect(quantityBytes('2G')).toBe(2e9);
    expect(quantityBytes('1000')).toBe(1000);
    expect(() => quantityBytes('1 GB')).toThrow(/not a memory quantity/);
  });
});

describe('shard StatefulSet', () => {
  it('empties its data directory at every start without persistence, so a node never outlives its data', () => {
    const ephemeral = cc({});
    const c = shardStatefulSet(ephemeral, 0, ephemeral.spec.redis, { zones: 0 }).spec!.template
      .spec!.containers[0]!;
    expect(c.command).toEqual([
      'sh',
      '-c',
      'rm -rf /data/* && exec redis-server "$@"',
      'redis-server',
    ]);
    expect(c.args![0]).toBe('/etc/redis/redis.conf');
    const durable = cc({ redis: { persistence: { enabled: true } } });
    expect(
      shardStatefulSet(durable, 0, durable.spec.redis, { zones: 0 }).spec!.template.spec!
        .containers[0]!.command,
    ).toEqual(['redis-server']);
  });

  it('runs 1 + replicasPerShard pods, updated by the operator, owned by the CacheCluster', () => {
    const c = cc({ redis: { replicasPerShard: 2 } });
    const sts = shardStatefulSet(c, 1, c.spec.redis, { zones: 0 });
    expect(sts.metadata!.name).toBe('cache-shard-1');
    expect(sts.spec!.replicas).toBe(3);
    expect(sts.spec!.serviceName).toBe('cache-redis');
    expect(sts.spec!.updateStrategy!.type).toBe('OnDelete');
    expect(sts.metadata!.ownerReferences![0]).toMatchObject({
      kind: 'CacheCluster',
      uid: 'uid-1',
      controller: true,
    });
    expect(sts.spec!.volumeClaimTemplates).toBeUndefined();
    const args = sts.spec!.template.spec!.containers[0]!.args!;
    expect(args).toEqual(expect.arrayContaining(['--cluster-announce-ip', '$(POD_IP)']));
  });

  it('keeps a shard’s pods on different nodes, and zones when there are enough', () => {
    const c = cc();
    const hostnameOnly = shardAffinity(c, 0, c.spec.redis, { zones: 1 }).podAntiAffinity!;
    expect(
      hostnameOnly.requiredDuringSchedulingIgnoredDuringExecution!.map((t) => t.topologyKey),
    ).toEqual(['kubernetes.io/hostname']);
    expect(hostnameOnly.preferredDuringSchedulingIgnoredDuringExecution).toEqual([]);
    const zones = shardAffinity(c, 0, c.spec.redis, { zones: 3 }).podAntiAffinity!;
    expect(zones.requiredDuringSchedulingIgnoredDuringExecution!.map((t) => t.topologyKey)).toEqual(
      ['kubernetes.io/hostname', 'topology.kubernetes.io/zone'],
    );
    const three = cc({ redis: { replicasPerShard: 2 } });
    const few = shardAffinity(three, 0, three.spec.redis, { zones: 2 }).podAntiAffinity!;
    expect(
      few.preferredDuringSchedulingIgnoredDuringExecution![0]!.podAffinityTerm.topologyKey,
    ).toBe('topology.kubernetes.io/zone');
    const term = zones.requiredDuringSchedulingIgnoredDuringExecution![0]!;
    expect(term.labelSelector!.matchLabels).toMatchObject({
      'tiercache.io/cluster': 'cache',
      'tiercache.io/shard': '0',
    });
  });

  it('claims a volume per pod with persistence, and deletes it with the shard', () => {
    const c = cc({
      redis: { persistence: { enabled: true, size: '5Gi', storageClassName: 'fast' } },
    });
    const sts = shardStatefulSet(c, 0, c.spec.redis, { zones: 0 });
    expect(sts.spec!.volumeClaimTemplates![0]!.spec).toMatchObject({
      storageClassName: 'fast',
      resources: { requests: { storage: '5Gi' } },
    });
    expect(sts.spec!.persistentVolumeClaimRetentionPolicy).toEqual({
      whenDeleted: 'Delete',
      whenScaled: 'Delete',
    });
  });
});

describe('regional proxy', () => {
  it('runs tiercache proxy in its region with the API key from its Secret', () => {
    const c = cc({
      proxies: [
        {
          name: 'tmdb-apac',
          upstream: 'tmdb',
          region: 'ap-southeast-1',
          apiKeySecretRef: { name: 'tmdb', key: 'apiKey' },
          env: { JSON_MEMORY_TTL: '5' },
          readFrom: 'nearest',
        },
      ],
    });
    const d: V1Deployment = proxyDeployment(c, c.spec.proxies[0]!, 'tiercache:0.1.0', {
      as: 'default',
      password: 'pw',
    });
    const pod = d.spec!.template.spec!;
    expect(d.metadata!.name).toBe('cache-proxy-tmdb-apac');
    expect(pod.nodeSelector).toEqual({ 'topology.kubernetes.io/region': 'ap-southeast-1' });
    const env = Object.fromEntries(
      pod.containers[0]!.env!.map((e) => [e.name, e.value ?? e.valueFrom]),
    );
    expect(env).toMatchObject({
      REGION: 'ap-southeast-1',
      REDIS_CLUSTER_NODES: 'cache-redis.apps.svc:6379',
      REDIS_READ_FROM: 'nearest',
      JSON_MEMORY_TTL: '5',
      TMDB_API_KEY: { secretKeyRef: { name: 'tmdb', key: 'apiKey' } },
      REDIS_USERNAME: 'default',
      REDIS_PASSWORD: { secretKeyRef: { name: 'cache-redis-auth', key: 'password' } },
    });
    expect(pod.containers[0]!.args).toEqual(['proxy']);
    expect(pod.containers[0]!.securityContext).toMatchObject({
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
    });
  });
});

describe('regional proxy without auth', () => {
  it('gets no Redis credentials, and a new template when auth is turned on', () => {
    const c = cc({ proxies: [{ name: 'p', upstream: 'crypto', region: 'eu-west-1' }] });
    const off = proxyDeployment(c, c.spec.proxies[0]!, 'tiercache:0.1.0', {
      as: 'default',
      password: NO_PASSWORD,
    });
    const names = off.spec!.template.spec!.containers[0]!.env!.map((e) => e.name);
    expect(names).not.toContain('REDIS_PASSWORD');
    expect(names).not.toContain('REDIS_USERNAME');
    const on = proxyDeployment(c, c.spec.proxies[0]!, 'tiercache:0.1.0', {
      as: 'default',
      password: 'pw',
    });
    expect(on.spec!.template.metadata!.annotations).not.toEqual(
      off.spec!.template.metadata!.annotations,
    );
  });
});

describe('desired objects', () => {
  it('own everything, and hold the password only in the auth Secret', () => {
    const c = cc({ proxies: [{ name: 'p', upstream: 'crypto', region: 'eu-west-1' }] });
    const objects = desiredObjects(c, {
      spec: c.spec,
      shards: 3,
      auth: { password: PASSWORD },
      adminToken: 'admin-token-1',
      exporterPassword: 'exporter-pw',
      proxyUserPassword: 'proxy-user-pw',
      proxyLogin: { as: 'default', password: PASSWORD },
      placement: { zones: 3 },
      proxyImage: 'tiercache:0.1.0',
    });
    expect(objects.map((o) => `${o.kind}/${o.metadata!.name}`)).toEqual([
      'ConfigMap/cache-redis-config',
      'Service/cache-redis',
      'Secret/cache-redis-auth',
      'Secret/cache-redis-auth-in-use',
      'StatefulSet/cache-shard-0',
      'PodDisruptionBudget/cache-shard-0',
      'StatefulSet/cache-shard-1',
      'PodDisruptionBudget/cache-shard-1',
      'StatefulSet/cache-shard-2',
      'PodDisruptionBudget/cache-shard-2',
      'Secret/cache-proxy-admin',
      'Deployment/cache-proxy-p',
      'Service/cache-proxy-p',
    ]);
    for (const o of objects) {
      expect(o.metadata!.ownerReferences![0]!.uid).toBe('uid-1');
      if (o.kind !== 'Secret') expect(JSON.stringify(o)).not.toContain(PASSWORD);
    }
    const sts = objects[4] as V1StatefulSet;
    expect(sts.spec!.template.metadata!.annotations!['tiercache.io/config-hash']).toMatch(
      /^[0-9a-f]{16}$/,
    );
  });
});

describe('metrics sidecar (spec.redis.exporter)', () => {
  const EXPORTER_PW = 'exporter-pw-1';
  const inputs = (c: CacheCluster) => ({
    spec: c.spec,
    shards: 1,
    auth: { password: PASSWORD },
    adminToken: 't',
    exporterPassword: EXPORTER_PW,
    proxyUserPassword: 'proxy-user-pw',
    proxyLogin: { as: 'default' as const, password: PASSWORD },
    placement: { zones: 0 },
    proxyImage: 'tiercache:0.1.0',
  });

  it('is off by default: one container, no exporter user, no exporter Secret', () => {
    const c = cc({});
    const pod = shardStatefulSet(c, 0, c.spec.redis, { zones: 0 }).spec!.template.spec!;
    expect(pod.containers.map((x) => x.name)).toEqual(['redis']);
    expect(authConf(c.spec.redis, [PASSWORD], { exporter: EXPORTER_PW })).not.toContain(
      'tiercache-exporter',
    );
    const names = desiredObjects(c, inputs(c)).map((o) => o.metadata!.name);
    expect(names).not.toContain('cache-redis-exporter');
  });

  it('reads its own node as a user that may read metrics only, with a password from its own Secret', () => {
    for (const persistence of [false, true]) {
      const c = cc({
        redis: { exporter: { enabled: true }, persistence: { enabled: persistence } },
      });
      const pod = shardStatefulSet(c, 0, c.spec.redis, { zones: 0 }).spec!.template.spec!;
      expect(pod.containers.map((x) => x.name)).toEqual(['redis', 'exporter']);
      const exporter = pod.containers[1]!;
      expect(exporter.image).toBe('oliver006/redis_exporter:v1.74.0');
      expect(exporter.ports).toEqual([{ name: 'metrics', containerPort: 9121 }]);
      expect(exporter.securityContext).toMatchObject({
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
      const env = Object.fromEntries(exporter.env!.map((e) => [e.name, e]));
      expect(env.REDIS_ADDR!.value).toBe('redis://localhost:6379');
      expect(env.REDIS_USER!.value).toBe('tiercache-exporter');
      expect(env.REDIS_PASSWORD!.valueFrom!.secretKeyRef).toEqual({
        name: 'cache-redis-exporter',
        key: 'password',
      });
      // Beside the default user's line (requirepass, or the quarantined `user default`).
      const conf = authConf(c.spec.redis, [PASSWORD], { exporter: EXPORTER_PW });
      const line = conf.split('\n').find((l) => l.startsWith('user tiercache-exporter '));
      expect(line).toBe(
        `user tiercache-exporter on ">${EXPORTER_PW}" resetkeys resetchannels -@all +ping +info +config|get +cluster|info +cluster|nodes +slowlog|get +slowlog|len +latency|latest +latency|histogram +client|setname +select +dbsize`,
      );
      expect(conf).toContain(persistence ? 'requirepass' : 'user default on');
      const objects = desiredObjects(c, inputs(c));
      const secret = objects.find((o) => o.metadata!.name === 'cache-redis-exporter') as {
        data: Record<string, string>;
      };
      expect(Buffer.from(secret.data.password!, 'base64').toString()).toBe(EXPORTER_PW);
      // Its password is in no object but the two Secrets.
      for (const o of objects)
        if (o.kind !== 'Secret') expect(JSON.stringify(o)).not.toContain(EXPORTER_PW);
    }
  });
});
