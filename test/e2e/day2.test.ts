/**
 * Day-2 changes on running CacheClusters, persistence off (the default) and on side by side,
 * each with its two regional proxies under traffic and a writer: the password rotated through
 * the user's Secret, then the generated Secret deleted. No change may lock anyone out or lose
 * a key: the nodes accept the new password before any client uses it, and forget the old one
 * only once every proxy has rolled to the new one.
 *
 * The operator is installed for these two namespaces only (`watchNamespaces`: Roles there, no
 * cluster-wide read but the node list), so every change below also runs on a namespaced install;
 * a CacheCluster in a third namespace is left alone.
 */
import type {
  V1Deployment,
  V1PersistentVolumeClaim,
  V1Pod,
  V1Secret,
  V1StatefulSet,
} from '@kubernetes/client-node';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CacheCluster } from '../../operator/api/types.ts';
import { rolledOut } from '../../operator/controller/auth-plan.ts';
import { userIsOn } from '../../operator/redis/observe.ts';
import {
  OPERATOR_USER,
  PROBE_USER,
  PROXY_USER,
  REPLICATION_USER,
} from '../../operator/resources/names.ts';
import { AUTH_VERSION_ANNOTATION, templateUsesProxyUser } from '../../operator/resources/proxy.ts';
import { around, BEFORE_KEYS, expectNothingLost, report } from '../helpers/e2e-around.ts';
import { bothModes, type Mode } from '../helpers/e2e-cachecluster.ts';
import { prepareNamespace, sampleCacheCluster } from '../helpers/e2e-proxies.ts';
import { sample } from '../helpers/exporter.ts';
import {
  createCacheCluster,
  installOperator,
  kubectl,
  kubectlJson,
  removeAll,
  upgradeOperator,
} from '../helpers/kube.ts';
import { waitFor } from '../helpers/wait.ts';

const OPERATOR_NS = `tiercache-d${process.pid}`;
const RELEASE = `td${process.pid}`;

const MODES = bothModes('day2');
const OUTSIDE_NS = `day2-outside-${process.pid}`;

/** Sets the user's Secret `redis-pw` to `password` (created or replaced). */
function setUserPassword(ns: string, password: string): void {
  const secret = kubectl([
    'create',
    'secret',
    'generic',
    'redis-pw',
    '-n',
    ns,
    `--from-literal=password=${password}`,
    '--dry-run=client',
    '-o',
    'json',
  ]);
  kubectl(['apply', '-n', ns, '-f', '-'], secret);
}

/** `kubectl patch` of the mode's CacheCluster (a merge patch, or a JSON patch). */
function patchCacheCluster(m: Mode, type: 'merge' | 'json', patch: unknown): void {
  kubectl(['patch', 'cc/cache', '-n', m.cc.ns, `--type=${type}`, '-p', JSON.stringify(patch)]);
}

/** The mode's proxy Deployments. */
const proxyDeployments = (m: Mode) =>
  kubectlJson<{ items: V1Deployment[] }>([
    'get',
    'deployments',
    '-n',
    m.cc.ns,
    '-l',
    'app.kubernetes.io/component=proxy',
  ]).items;

const authSecret = (m: Mode) =>
  kubectlJson<V1Secret>(['get', 'secret', `${m.cc.name}-redis-auth`, '-n', m.cc.ns]);

/** What each Redis pod answers to `AUTH default <password>`: 'OK', or the error's first word. */
async function answersTo(m: Mode, password: string): Promise<string[]> {
  return Promise.all(
    m.cc
      .redisPods()
      .map((p) =>
        m.cc
          .onNode(
            p.metadata!.name!,
            async (n) => String(await n.call('AUTH', 'default', password)),
            '',
          )
          .catch((err: Error) => err.message.split(' ')[0]!),
      ),
  );
}

const eventCount = (m: Mode, reason: string) =>
  m.cc.events().filter((e) => e.reason === reason).length;
const rotations = (m: Mode) => eventCount(m, 'PasswordRotated');

/** The password in the Secret `<cc>-redis-<suffix>` of one of the operator's ACL users. */
const userSecretPassword = (m: Mode, suffix: string) =>
  Buffer.from(
    kubectlJson<V1Secret>(['get', 'secret', `${m.cc.name}-redis-${suffix}`, '-n', m.cc.ns]).data!
      .password!,
    'base64',
  ).toString();

/** Runs `fn` on a connection to the Redis pod signed in as `username` (no ready check: INFO may be refused). */
async function signedInAs<T>(
  pod: V1Pod,
  username: string,
  password: string,
  fn: (node: Redis) => Promise<T>,
): Promise<T> {
  const node = new Redis({
    host: pod.status!.podIP!,
    port: 6379,
    username,
    password,
    maxRetriesPerRequest: 0,
    lazyConnect: true,
    enableReadyCheck: false,
  });
  try {
    await node.connect();
    return await fn(node);
  } finally {
    node.disconnect();
  }
}

/** Every Redis pod with its restart count: equal before and after means nothing restarted. */
const podIdentities = (m: Mode) =>
  m.cc
    .redisPods()
    .map((p) => `${p.metadata!.uid} ${p.status?.containerStatuses?.[0]?.restartCount}`)
    .sort();

/** The proxies of `name` answer from the shared L2 with the password they have now. */
async function proxiesShareL2(ns: string, name: string, movie: number): Promise<string[]> {
  const ips = kubectlJson<{ items: V1Pod[] }>([
    'get',
    'pods',
    '-n',
    ns,
    '-l',
    `tiercache.io/proxy=${name}`,
    '--field-selector=status.phase=Running',
  ]).items.flatMap((p) =>
    p.status?.podIP && !p.metadata?.deletionTimestamp ? [p.status.podIP] : [],
  );
  const caches: string[] = [];
  for (const ip of ips) {
    const res = await fetch(`http://${ip}:6635/3/movie/${movie}`);
    await res.arrayBuffer();
    caches.push(res.headers.get('x-cache') ?? '');
  }
  return caches;
}

/** A password change, with everything `around` counts, until its rotation is over. */
function rotate(m: Mode, name: string, change: () => void) {
  const before = rotations(m);
  return around(m, name, change, {
    what: 'the rotation to finish',
    when: () => rotations(m) > before,
  });
}

beforeAll(async () => {
  // The namespaces exist before the release: its Roles go into them.
  const upstreams = MODES.map((m) => prepareNamespace(m.cc.ns));
  installOperator(RELEASE, OPERATOR_NS, [`watchNamespaces={${MODES.map((m) => m.cc.ns)}}`]);
  createCacheCluster(OUTSIDE_NS, { redis: { shards: 1, replicasPerShard: 0 }, proxies: [] });
  for (const [i, m] of MODES.entries()) {
    const upstream = upstreams[i]!;
    setUserPassword(m.cc.ns, 'first-password-0001');
    const cc: CacheCluster = sampleCacheCluster(upstream);
    cc.spec.redis.persistence = { ...cc.spec.redis.persistence, enabled: m.persistence };
    cc.spec.redis.auth = { ...cc.spec.redis.auth, enabled: true, secretName: 'redis-pw' };
    kubectl(['apply', '-n', m.cc.ns, '-f', '-'], JSON.stringify(cc));
  }
  await Promise.all(MODES.map((m) => m.cc.waitReadyWithReplicas()));
}, 300_000);

afterAll(() => {
  removeAll(RELEASE, OPERATOR_NS, [...MODES.map((m) => m.cc.ns), OUTSIDE_NS]);
});

describe('day-2 changes without lockouts, persistence off (the default) and on', () => {
  it('helm upgrade brings the CRD its chart ships (pre-upgrade hook), and the clusters stay Ready', async () => {
    const CRD = 'cacheclusters.tiercache.io';
    const columns = () =>
      kubectlJson<{ spec: { versions: { additionalPrinterColumns: { name: string }[] }[] } }>([
        'get',
        'crd',
        CRD,
      ]).spec.versions[0]!.additionalPrinterColumns.map((c) => c.name);
    const shipped = columns();
    expect(shipped).toContain('Migration');
    // As an older chart version would have left it: without the Migration column.
    kubectl([
      'patch',
      'crd',
      CRD,
      '--type=json',
      '-p',
      JSON.stringify([
        {
          op: 'remove',
          path: `/spec/versions/0/additionalPrinterColumns/${shipped.indexOf('Migration')}`,
        },
      ]),
    ]);
    expect(columns()).not.toContain('Migration');
    upgradeOperator(RELEASE, OPERATOR_NS);
    expect(columns()).toEqual(shipped);
    // The hook cleaned up after itself.
    expect(kubectl(['get', 'jobs,serviceaccounts', '-n', OPERATOR_NS, '-o', 'name'])).not.toMatch(
      /-crds/,
    );
    await Promise.all(MODES.map((m) => m.cc.waitReadyWithReplicas()));
  });

  it('installed for two namespaces, leaves a CacheCluster in a third alone', () => {
    // By now the operator has reconciled both of its CacheClusters to Ready (beforeAll).
    const outside = kubectlJson<CacheCluster>(['get', 'cc', 'cache', '-n', OUTSIDE_NS]);
    expect(outside.status).toBeUndefined();
    const sets = kubectlJson<{ items: unknown[] }>(['get', 'statefulsets', '-n', OUTSIDE_NS]);
    expect(sets.items).toEqual([]);
  });

  it('the password changed in the user’s Secret: every node takes the new one and refuses the old, the proxies roll to it; nothing lost', async () => {
    const outcomes = await Promise.all(
      MODES.map((m) => rotate(m, 'user', () => setUserPassword(m.cc.ns, 'second-password-0002'))),
    );
    for (const [i, m] of MODES.entries()) {
      const o = outcomes[i]!;
      report('password rotation', m, o);
      expect(await answersTo(m, 'second-password-0002'), m.label).toEqual(Array(6).fill('OK'));
      expect(await answersTo(m, 'first-password-0001'), m.label).toEqual(
        Array(6).fill('WRONGPASS'),
      );
      expect(m.cc.password(), m.label).toBe('second-password-0002');
      // Nothing of the rotation is left in the Secret once it is over.
      expect(Object.keys(authSecret(m).data ?? {}).sort()).toEqual(['auth.conf', 'password']);
      expectNothingLost(m, o);
      // The rolled proxies reach L2 with the new password: the second one answers from it.
      expect((await proxiesShareL2(m.cc.ns, 'tmdb-apac', 4242)).slice(1), m.label).toContain('L2');
    }
  }, 300_000);

  it('maxMemory, evictionPolicy and the snapshot and fsync schedule changed: set live on every node, no pod restarted', async () => {
    const before = MODES.map(podIdentities);
    for (const m of MODES)
      patchCacheCluster(m, 'merge', {
        spec: {
          redis: {
            maxMemory: '96Mi',
            evictionPolicy: 'volatile-lru',
            persistence: { snapshotEverySeconds: 3600, appendFsync: 'always' },
          },
        },
      });
    // Without a volume there is nothing to snapshot: no save points (and no AOF to fsync).
    const persistenceWanted = (m: Mode) =>
      m.persistence ? { save: '3600 1', appendfsync: 'always' } : { save: '' };
    await Promise.all(
      MODES.map((m) =>
        waitFor(
          `${m.cc.ns}: every node to run with the new settings`,
          async () => {
            const got = await Promise.all(
              m.cc
                .redisPods()
                .map((p) =>
                  m.cc
                    .onNode(p.metadata!.name!, (n) =>
                      n.call(
                        'CONFIG',
                        'GET',
                        'maxmemory',
                        'maxmemory-policy',
                        'save',
                        'appendfsync',
                      ),
                    )
                    .catch(() => []),
                ),
            );
            return got.every((g) => {
              // CONFIG GET answers name, value pairs in no fixed order.
              const flat = g as string[];
              const c = new Map(flat.flatMap((v, i) => (i % 2 === 0 ? [[v, flat[i + 1]]] : [])));
              const wanted = persistenceWanted(m);
              return (
                c.get('maxmemory') === String(96 * 2 ** 20) &&
                c.get('maxmemory-policy') === 'volatile-lru' &&
                c.get('save') === wanted.save &&
                (!m.persistence || c.get('appendfsync') === wanted.appendfsync)
              );
            });
          },
          60_000,
          500,
        ),
      ),
    );
    await Promise.all(MODES.map((m) => m.cc.waitReadyWithReplicas()));
    MODES.forEach((m, i) => {
      expect(podIdentities(m), m.label).toEqual(before[i]);
      expect(
        m.cc.events().some((e) => e.reason === 'ConfigApplied'),
        m.label,
      ).toBe(true);
    });
  }, 180_000);

  it('the generated Secret deleted: a new password is generated and rotated in from the one in use; nothing lost', async () => {
    for (const m of MODES)
      patchCacheCluster(m, 'json', [{ op: 'remove', path: '/spec/redis/auth/secretName' }]);
    // The generated Secret takes over the password in use: no rotation for that.
    await Promise.all(MODES.map((m) => m.cc.waitReadyWithReplicas()));
    expect(MODES.map((m) => m.cc.password())).toEqual(Array(2).fill('second-password-0002'));
    const outcomes = await Promise.all(
      MODES.map((m) =>
        rotate(m, 'deleted', () =>
          kubectl(['delete', 'secret', `${m.cc.name}-redis-auth`, '-n', m.cc.ns]),
        ),
      ),
    );
    for (const [i, m] of MODES.entries()) {
      const o = outcomes[i]!;
      report('generated Secret deleted', m, o);
      const fresh = m.cc.password();
      expect(fresh, m.label).not.toBe('second-password-0002');
      expect(await answersTo(m, fresh), m.label).toEqual(Array(6).fill('OK'));
      expect(await answersTo(m, 'second-password-0002'), m.label).toEqual(
        Array(6).fill('WRONGPASS'),
      );
      expectNothingLost(m, o);
    }
  }, 300_000);

  it('auth turned off, then on again: live on every node (no pod restarted), the proxies roll each time; nothing lost', async () => {
    const before = MODES.map(podIdentities);
    const toggle = (enabled: boolean, reason: string) =>
      Promise.all(
        MODES.map((m) => {
          const seen = eventCount(m, reason);
          return around(
            m,
            enabled ? 'auth-on' : 'auth-off',
            () => patchCacheCluster(m, 'merge', { spec: { redis: { auth: { enabled } } } }),
            { what: `a ${reason} Event`, when: () => eventCount(m, reason) > seen },
          );
        }),
      );
    const masterauths = (m: Mode) =>
      Promise.all(
        m.cc
          .redisPods()
          .map((p) => m.cc.onNode(p.metadata!.name!, (n) => n.call('CONFIG', 'GET', 'masterauth'))),
      );

    const off = await toggle(false, 'AuthDisabled');
    for (const [i, m] of MODES.entries()) {
      report('auth turned off', m, off[i]!);
      expect(m.cc.password(), m.label).toBe('');
      // nopass: any password is accepted, and none (onNode sends none now).
      expect(await answersTo(m, 'not-a-password'), m.label).toEqual(Array(6).fill('OK'));
      expect(await masterauths(m), m.label).toEqual(Array(6).fill(['masterauth', '']));
      expectNothingLost(m, off[i]!);
      expect((await proxiesShareL2(m.cc.ns, 'tmdb-apac', 4343)).slice(1), m.label).toContain('L2');
    }

    const on = await toggle(true, 'AuthEnabled');
    for (const [i, m] of MODES.entries()) {
      report('auth turned on', m, on[i]!);
      const fresh = m.cc.password();
      expect(fresh, m.label).not.toBe('');
      expect(await answersTo(m, fresh), m.label).toEqual(Array(6).fill('OK'));
      expect(await answersTo(m, 'not-a-password'), m.label).toEqual(Array(6).fill('WRONGPASS'));
      expect(await masterauths(m), m.label).toEqual(Array(6).fill(['masterauth', fresh]));
      expectNothingLost(m, on[i]!);
      expect((await proxiesShareL2(m.cc.ns, 'tmdb-apac', 4444)).slice(1), m.label).toContain('L2');
      // Live, both ways: the same pods, never restarted.
      expect(podIdentities(m), m.label).toEqual(before[i]);
    }
  }, 420_000);

  it('persistence.size grown 1Gi → 2Gi: with persistence the claims grow in place and no pod restarts; without, nothing changes; nothing lost', async () => {
    const before = MODES.map(podIdentities);
    const claimsAt = (m: Mode, size: string) => {
      const claims = kubectlJson<{ items: V1PersistentVolumeClaim[] }>([
        'get',
        'pvc',
        '-n',
        m.cc.ns,
        '-l',
        m.cc.selector,
      ]).items;
      return claims.length === 6 && claims.every((c) => c.status?.capacity?.storage === size);
    };
    const outcomes = await Promise.all(
      MODES.map((m) =>
        around(
          m,
          'grown',
          () =>
            patchCacheCluster(m, 'merge', {
              spec: { redis: { persistence: { size: '2Gi' } } },
            }),
          m.persistence
            ? { what: 'every claim at 2Gi', when: () => claimsAt(m, '2Gi') }
            : { what: 'the new generation to be seen', when: () => true },
        ),
      ),
    );
    for (const [i, m] of MODES.entries()) {
      const o = outcomes[i]!;
      report('disk grown', m, o);
      expectNothingLost(m, o);
      expect(podIdentities(m), m.label).toEqual(before[i]);
      if (m.persistence) {
        const sizes = kubectlJson<{ items: V1StatefulSet[] }>([
          'get',
          'sts',
          '-n',
          m.cc.ns,
        ]).items.map((s) => s.spec?.volumeClaimTemplates?.[0]?.spec?.resources?.requests?.storage);
        expect(sizes, m.label).toEqual(['2Gi', '2Gi', '2Gi']);
        expect(
          m.cc.events().some((e) => e.reason === 'StorageExpanded'),
          m.label,
        ).toBe(true);
      }
    }
  }, 300_000);

  it('the metrics sidecar turned on: every Redis pod rolls to carry it, each reporting its own node; nothing lost', async () => {
    const withSidecar = (m: Mode) => {
      const pods = m.cc.redisPods();
      return (
        pods.length === 6 &&
        pods.every(
          (p) =>
            !p.metadata?.deletionTimestamp &&
            p.spec?.containers.some((c) => c.name === 'exporter') &&
            (p.status?.containerStatuses ?? []).filter((c) => c.ready).length === 2,
        )
      );
    };
    const outcomes = await Promise.all(
      MODES.map((m) =>
        around(
          m,
          'exporter',
          () => patchCacheCluster(m, 'merge', { spec: { redis: { exporter: { enabled: true } } } }),
          { what: 'every Redis pod to carry a ready exporter', when: () => withSidecar(m) },
        ),
      ),
    );
    for (const [i, m] of MODES.entries()) {
      const o = outcomes[i]!;
      report('exporter turned on', m, o);
      expectNothingLost(m, o);
      // Each sidecar reads its own node: the same key count as that node's DBSIZE (nothing
      // writes now, so the two settle on one figure), a cluster whose state is ok.
      for (const pod of m.cc.redisPods()) {
        const name = pod.metadata!.name!;
        const url = `http://${pod.status!.podIP}:9121/metrics`;
        const seen = await waitFor(
          `${name}: the exporter's key count to match DBSIZE`,
          async () => {
            const metrics = await (await fetch(url)).text();
            const keys = sample(metrics, 'redis_db_keys{db="db0"}');
            const dbsize = await m.cc.onNode(name, (n) => n.dbsize());
            return keys === dbsize ? { metrics, keys } : undefined;
          },
          30_000,
          500,
        );
        expect(sample(seen.metrics, 'redis_up'), name).toBe(1);
        expect(sample(seen.metrics, 'redis_cluster_state'), name).toBe(1);
        expect(seen.keys, name).toBeGreaterThanOrEqual(BEFORE_KEYS / 3);
      }
      // Its password is the sidecar's own, never the clients' one.
      const exporterSecret = kubectlJson<V1Secret>([
        'get',
        'secret',
        `${m.cc.name}-redis-exporter`,
        '-n',
        m.cc.ns,
      ]);
      const exporterPassword = Buffer.from(exporterSecret.data!.password!, 'base64').toString();
      expect(exporterPassword, m.label).not.toBe(m.cc.password());
    }
  }, 420_000);

  it("the proxies' own ACL user turned on and off under traffic: they roll to it once every node knows it, it may not FLUSHALL or CONFIG, and it is forgotten after; nothing lost", async () => {
    const rolledAs = (m: Mode, onUser: boolean) =>
      proxyDeployments(m).every(
        (d) =>
          templateUsesProxyUser(d) === onUser &&
          rolledOut(d, d.spec!.template.metadata!.annotations![AUTH_VERSION_ANNOTATION]!),
      );
    const userPassword = (m: Mode) => userSecretPassword(m, 'proxy');
    /** What every Redis node knows of the user (ACL GETUSER: null when it has none). */
    const nodesKnowUser = async (m: Mode) =>
      Promise.all(
        m.cc
          .redisPods()
          .map((p) => m.cc.onNode(p.metadata!.name!, (n) => n.call('ACL', 'GETUSER', PROXY_USER))),
      );
    const setUsers = (proxies: boolean) => (m: Mode) =>
      patchCacheCluster(m, 'merge', { spec: { redis: { auth: { users: { proxies } } } } });

    // Earlier changes (password rotations) left refused logins in ACL LOG: start from none.
    for (const m of MODES)
      for (const p of m.cc.redisPods())
        await m.cc.onNode(p.metadata!.name!, (n) => n.call('ACL', 'LOG', 'RESET'));
    const on = await Promise.all(
      MODES.map((m) =>
        around(m, 'acl-user-on', () => setUsers(true)(m), {
          what: 'the proxies to run as their own user',
          when: () => rolledAs(m, true),
        }),
      ),
    );
    for (const [i, m] of MODES.entries()) {
      const o = on[i]!;
      report('proxy user on', m, o);
      expectNothingLost(m, o);
      // The proxies served everything through the switch, and no node refused them anything.
      for (const pod of m.cc.redisPods()) {
        const name = pod.metadata!.name!;
        expect(await m.cc.onNode(name, (n) => n.call('ACL', 'LOG')), name).toEqual([]);
        await signedInAs(pod, PROXY_USER, userPassword(m), async (asProxy) => {
          await expect(asProxy.call('FLUSHALL'), name).rejects.toThrow(/NOPERM/);
          await expect(asProxy.call('CONFIG', 'GET', 'maxmemory'), name).rejects.toThrow(/NOPERM/);
          await expect(asProxy.call('CLUSTER', 'RESET'), name).rejects.toThrow(/NOPERM/);
          await expect(asProxy.call('GET', 'acl-user-on:before:1'), name).rejects.toThrow(/NOPERM/);
        });
      }
    }
    // The writer's keys (outside the proxies' prefixes) are all there: the refused calls did nothing.
    for (const m of MODES)
      expect(await m.cc.missingKeys('acl-user-on:before', BEFORE_KEYS)).toEqual([]);

    const off = await Promise.all(
      MODES.map((m) =>
        around(m, 'acl-user-off', () => setUsers(false)(m), {
          what: 'the proxies back on default and every node without their user',
          when: async () => rolledAs(m, false) && (await nodesKnowUser(m)).every((u) => u === null),
        }),
      ),
    );
    for (const [i, m] of MODES.entries()) {
      const o = off[i]!;
      report('proxy user off', m, o);
      expectNothingLost(m, o);
    }
  }, 600_000);

  it("replication's and the operator's own ACL users turned on under traffic: every replica signs in as the one (links cut to prove it), the operator as the other (a node that lost it is taught it again), also while it fails a killed master over (a rotation of the default password leaving masterauth alone is tested in replication-user.test.ts); turned off, both sign in as default and the users are deleted; nothing lost", async () => {
    /** Each Redis pod's masteruser and which of the two users it has. */
    const signIns = (m: Mode) =>
      Promise.all(
        m.cc.redisPods().map((p) =>
          m.cc.onNode(p.metadata!.name!, async (n) => ({
            masteruser: ((await n.call('CONFIG', 'GET', 'masteruser')) as string[])[1],
            masterauth: ((await n.call('CONFIG', 'GET', 'masterauth')) as string[])[1],
            hasUser: (await n.call('ACL', 'GETUSER', REPLICATION_USER)) !== null,
            hasOperatorUser: (await n.call('ACL', 'GETUSER', OPERATOR_USER)) !== null,
            hasProbeUser: (await n.call('ACL', 'GETUSER', PROBE_USER)) !== null,
          })),
        ),
      );
    /**
     * Whether the 3 replicas' links are signed in as `user`. Masters whose replicas are signed in
     * otherwise have their links cut (CLIENT KILL TYPE replica), so they sign in again.
     */
    const linksSignedInAs = async (m: Mode, user: string) => {
      let signedIn = 0;
      for (const pod of m.cc.redisPods())
        await m.cc.onNode(pod.metadata!.name!, async (n) => {
          const lines = String(await n.call('CLIENT', 'LIST', 'TYPE', 'replica'))
            .split('\n')
            .filter((l) => l.trim() !== '');
          const other = lines.filter((l) => !l.includes(` user=${user} `));
          signedIn += lines.length - other.length;
          if (other.length > 0) await n.call('CLIENT', 'KILL', 'TYPE', 'replica');
        });
      return signedIn === 3;
    };
    const setUsers = (on: boolean) => (m: Mode) =>
      patchCacheCluster(m, 'merge', {
        spec: {
          redis: {
            auth: { users: { replication: on, operator: on, ...(on ? {} : { proxies: false }) } },
          },
        },
      });
    const replicationPassword = (m: Mode) => userSecretPassword(m, 'replication');

    for (const m of MODES)
      for (const p of m.cc.redisPods())
        await m.cc.onNode(p.metadata!.name!, (n) => n.call('ACL', 'LOG', 'RESET'));
    const on = await Promise.all(
      MODES.map((m) =>
        around(m, 'repl-user-on', () => setUsers(true)(m), {
          what: `every node replicating as ${REPLICATION_USER} and knowing ${OPERATOR_USER}`,
          when: async () => {
            const password = replicationPassword(m);
            return (
              eventCount(m, 'OperatorUserOn') > 0 &&
              (await signIns(m)).every(
                (s) =>
                  s.masteruser === REPLICATION_USER &&
                  s.masterauth === password &&
                  s.hasUser &&
                  s.hasOperatorUser,
              ) &&
              (await linksSignedInAs(m, REPLICATION_USER))
            );
          },
        }),
      ),
    );
    for (const [i, m] of MODES.entries()) {
      report('replication user on', m, on[i]!);
      expectNothingLost(m, on[i]!);
      const password = replicationPassword(m);
      expect(password, m.label).not.toBe(m.cc.password());
      for (const pod of m.cc.redisPods()) {
        const name = pod.metadata!.name!;
        // No node refused anyone a login or a command through the switch.
        expect(await m.cc.onNode(name, (n) => n.call('ACL', 'LOG')), name).toEqual([]);
        // The user replicates and does nothing else.
        await signedInAs(pod, REPLICATION_USER, password, async (asReplication) => {
          await expect(asReplication.call('GET', 'repl-user-on:before:1'), name).rejects.toThrow(
            /NOPERM/,
          );
          await expect(asReplication.call('FLUSHALL'), name).rejects.toThrow(/NOPERM/);
          await expect(asReplication.call('CONFIG', 'GET', 'masterauth'), name).rejects.toThrow(
            /NOPERM/,
          );
        });
      }
    }

    // A master killed: the operator fails it over and heals, and the restarted node replicates
    // as the replication user. Meanwhile one node of another shard has lost the operator's user
    // (deleted by hand): only an operator signed in as that user is refused there, falls back to
    // default and teaches it again — so its return shows the operator signs in as its user.
    const killed = await Promise.all(
      MODES.map(async (m) => {
        const shards = m.cc.get().status!.shards!;
        const pod = shards[0]!.master;
        const robbed = shards[1]!.replicas[0]!;
        const restarts = () =>
          m.cc.redisPods().find((p) => p.metadata!.name === pod)?.status?.containerStatuses?.[0]
            ?.restartCount ?? 0;
        const before = restarts();
        await m.cc.onNode(robbed, (n) => n.call('ACL', 'DELUSER', OPERATOR_USER));
        return around(m, 'users-master-killed', () => m.cc.crash(pod), {
          what: `${pod} restarted, every replica replicating as ${REPLICATION_USER}, and ${OPERATOR_USER} taught to ${robbed} again`,
          when: async () =>
            restarts() > before &&
            (await m.cc.onNode(robbed, (n) => n.call('ACL', 'GETUSER', OPERATOR_USER))) !== null &&
            (await linksSignedInAs(m, REPLICATION_USER)),
        });
      }),
    );
    for (const [i, m] of MODES.entries()) {
      report('master killed, both users on', m, killed[i]!);
      expectNothingLost(m, killed[i]!);
    }

    // `default` disabled, with the proxies' user turned on in the same patch: the operator rolls
    // the proxies first and switches default off only then. The helpers (writer, key counts)
    // sign in as the operator's user from here until default is back. Then a master is killed:
    // its node comes back from auth.conf with default off, Ready through the probe's own user.
    const defaultOn = (m: Mode) =>
      Promise.all(
        m.cc
          .redisPods()
          .map((p) =>
            m.cc.onNode(p.metadata!.name!, async (n) =>
              userIsOn((await n.call('ACL', 'GETUSER', 'default')) as unknown[]),
            ),
          ),
      );
    const proxiesOnTheirUser = (m: Mode) => proxyDeployments(m).every(templateUsesProxyUser);
    for (const m of MODES)
      m.cc.signInAs = { username: OPERATOR_USER, password: userSecretPassword(m, 'operator') };
    const disabled = await Promise.all(
      MODES.map((m) => {
        const shards = m.cc.get().status!.shards!;
        const pod = shards[2]!.master;
        const restarts = () =>
          m.cc.redisPods().find((p) => p.metadata!.name === pod)?.status?.containerStatuses?.[0]
            ?.restartCount ?? 0;
        const before = restarts();
        let killed = false;
        return around(
          m,
          'default-off',
          () =>
            patchCacheCluster(m, 'merge', {
              spec: { redis: { auth: { defaultUser: 'disabled', users: { proxies: true } } } },
            }),
          {
            what: `default off on every node, then ${pod} killed and back with it off`,
            when: async () => {
              if (eventCount(m, 'DefaultUserOff') === 0) return false;
              if ((await defaultOn(m)).some(Boolean)) return false;
              if (!killed) {
                expect(proxiesOnTheirUser(m), m.label).toBe(true);
                m.cc.crash(pod);
                killed = true;
                return false;
              }
              return (
                restarts() > before &&
                (await linksSignedInAs(m, REPLICATION_USER)) &&
                (await defaultOn(m)).every((on) => !on)
              );
            },
          },
        );
      }),
    );
    for (const [i, m] of MODES.entries()) {
      report('default disabled, then a master killed', m, disabled[i]!);
      expectNothingLost(m, disabled[i]!);
      expect(authSecret(m).data!.default, m.label).toBe(Buffer.from('off').toString('base64'));
      // No new connection may sign in as default, with the password it had or any other.
      expect(await answersTo(m, m.cc.password()), m.label).toEqual(Array(6).fill('WRONGPASS'));
      expect(await defaultOn(m), m.label).toEqual(Array(6).fill(false));
    }

    // `default` back (the users stay): every node lets it in again, the probe user is deleted.
    const enabled = await Promise.all(
      MODES.map((m) =>
        around(
          m,
          'default-on',
          () =>
            patchCacheCluster(m, 'merge', {
              spec: { redis: { auth: { defaultUser: 'password' } } },
            }),
          {
            what: `default on on every node and no ${PROBE_USER}`,
            when: async () =>
              eventCount(m, 'DefaultUserOn') > 0 &&
              (await defaultOn(m)).every(Boolean) &&
              (await signIns(m)).every((s) => !s.hasProbeUser),
          },
        ),
      ),
    );
    for (const [i, m] of MODES.entries()) {
      report('default enabled again', m, enabled[i]!);
      expectNothingLost(m, enabled[i]!);
      expect(await answersTo(m, m.cc.password()), m.label).toEqual(Array(6).fill('OK'));
      expect(authSecret(m).data!.default, m.label).toBeUndefined();
      m.cc.signInAs = undefined;
    }

    const off = await Promise.all(
      MODES.map((m) =>
        around(m, 'repl-user-off', () => setUsers(false)(m), {
          what: 'every node replicating as default, and none with either user',
          when: async () =>
            (await signIns(m)).every(
              (s) =>
                s.masteruser === 'default' &&
                s.masterauth === m.cc.password() &&
                !s.hasUser &&
                !s.hasOperatorUser,
            ) && (await linksSignedInAs(m, 'default')),
        }),
      ),
    );
    for (const [i, m] of MODES.entries()) {
      report('replication user off', m, off[i]!);
      expectNothingLost(m, off[i]!);
      const reasons = m.cc.events().map((e) => e.reason);
      expect(reasons, m.label).toContain('ReplicationUserOn');
      expect(reasons, m.label).toContain('ReplicationUserOff');
      expect(reasons, m.label).toContain('OperatorUserOff');
    }
  }, 600_000);
});
