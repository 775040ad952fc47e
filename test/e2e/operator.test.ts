/**
 * The operator as users run it: the chart installed with helm (the operator runs as pods with
 * its own ServiceAccount and leader election), the sample CacheCluster applied, and then what
 * users rely on — Ready with every slot served and replicas kept off their master's node, both
 * regional proxies serving and sharing L2 — and everything it owned gone once it is deleted.
 * The proxies' upstream is the demo upstream running as a pod (these machines have no internet).
 */
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPodReady } from '../../lib/pods.ts';
import type { CacheCluster } from '../../operator/api/types.ts';
import { checkCluster } from '../../operator/redis/check.ts';
import { Connections } from '../../operator/redis/connections.ts';
import { observe } from '../../operator/redis/observe.ts';
import { E2ECacheCluster } from '../helpers/e2e-cachecluster.ts';
import { prepareNamespace, sampleCacheCluster, startProxyTraffic } from '../helpers/e2e-proxies.ts';
import { helm, installOperator, kubectl, kubectlJson, leaseHolder } from '../helpers/kube.ts';
import { waitFor } from '../helpers/wait.ts';

const NS = `e2e-${process.pid}`;
const OPERATOR_NS = `tiercache-${process.pid}`;
const RELEASE = `tc${process.pid}`;

const timings: Record<string, number | string> = {};
const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
  const started = Date.now();
  try {
    return await fn();
  } finally {
    timings[name] = (Date.now() - started) / 1000;
  }
};

const cc = new E2ECacheCluster(NS);
const cacheCluster = () => cc.get();
const waitReady = (timeoutMs?: number) => cc.waitReady(timeoutMs);
const waitReadyWithReplicas = (timeoutMs?: number, shards = 3) =>
  cc.waitReadyWithReplicas(shards, 1, timeoutMs);
const REDIS = cc.selector;
const podsOf = (selector: string): V1Pod[] =>
  kubectlJson<{ items: V1Pod[] }>(['get', 'pods', '-n', NS, '-l', selector]).items;
const redisPassword = () => cc.password();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function slotCountOf(ranges: string): number {
  return ranges
    .split(',')
    .filter(Boolean)
    .reduce((n, r) => {
      const [a, b] = r.split('-').map(Number);
      return n + (b === undefined ? 1 : b - a! + 1);
    }, 0);
}

function expectBalanced(c: CacheCluster, shards: number): void {
  const counts = c.status!.shards!.map((s) => slotCountOf(s.slots));
  expect(counts).toHaveLength(shards);
  expect(counts.reduce((a, b) => a + b, 0)).toBe(16384);
  for (const n of counts)
    expect(Math.abs(n - 16384 / shards)).toBeLessThanOrEqual((16384 / shards) * 0.02 + 1);
}

let UPSTREAM = '';

beforeAll(async () => {
  UPSTREAM = prepareNamespace(NS);
  await timed('helm install', async () => {
    installOperator(RELEASE, OPERATOR_NS);
  });
}, 180_000);

afterAll(() => {
  for (const run of [
    () => kubectl(['delete', 'cc', '--all', '-n', NS, '--wait=false']),
    () => helm(['uninstall', RELEASE, '--namespace', OPERATOR_NS]),
    () => kubectl(['delete', 'namespace', NS, OPERATOR_NS, '--wait=false']),
  ]) {
    try {
      run();
    } catch {
      // best effort: the next step still runs
    }
  }
  console.log(`e2e step timings (s): ${JSON.stringify(timings)}`);
});

/** Events saying the operator finished migrations a previous run left open. */
const migrationRepairs = () => cc.events().filter((e) => e.reason === 'MigrationsFinished').length;

describe('the operator, installed with helm', () => {
  it('runs as pods of its own ServiceAccount, one of them leading', async () => {
    const operators = kubectlJson<{ items: V1Pod[] }>([
      'get',
      'pods',
      '-n',
      OPERATOR_NS,
      '-l',
      'app.kubernetes.io/component=operator',
    ]).items;
    expect(operators).toHaveLength(2);
    expect(operators[0]!.spec!.serviceAccountName).toBe(`${RELEASE}-tiercache`);
    const lease = await waitFor(
      'a leader',
      () => {
        const l = kubectlJson<{ spec: { holderIdentity?: string } }>([
          'get',
          'lease',
          'tiercache-operator',
          '-n',
          OPERATOR_NS,
        ]);
        return l.spec.holderIdentity;
      },
      30_000,
    );
    expect(operators.map((p) => p.metadata!.name)).toContain(lease);
  });

  it('makes the sample CacheCluster Ready: every slot served, replicas on other nodes, both regions serving and sharing L2', async () => {
    const sample = sampleCacheCluster(UPSTREAM);
    kubectl(['apply', '-n', NS, '-f', '-'], JSON.stringify(sample));
    const cc = await timed('1. sample Ready', () => waitReady());

    expect(cc.status!.readyShards).toBe(3);
    expect(cc.status!.shards!.map((s) => s.replicas.length)).toEqual([1, 1, 1]);
    const nodeOf = new Map(
      podsOf('tiercache.io/cluster=cache,app.kubernetes.io/component=redis').map((p) => [
        p.metadata!.name!,
        p.spec!.nodeName!,
      ]),
    );
    for (const shard of cc.status!.shards!)
      for (const replica of shard.replicas)
        expect(nodeOf.get(replica), `${shard.name}: ${replica}`).not.toBe(nodeOf.get(shard.master));

    const ips = podsOf('tiercache.io/cluster=cache,app.kubernetes.io/component=redis').map(
      (p) => `${p.status!.podIP}:6379`,
    );
    const conns = new Connections({ password: redisPassword(), timeoutMs: 3000 });
    try {
      const check = checkCluster(await observe(conns, ips));
      expect(check.uncovered).toEqual([]);
      expect(check.problems).toEqual([]);
    } finally {
      conns.close();
    }

    // A proxy connects to L2 in the background, retrying until the cluster it started beside
    // has formed, so it may still be on L1 alone for a moment after Ready: sharing is checked
    // once every Ready proxy pod says its L2 is up (how long that took is printed).
    const readyProxies = () =>
      podsOf('tiercache.io/proxy in (tmdb-apac,crypto-eu)').filter(isPodReady);
    await timed('1b. proxies on L2 after Ready', () =>
      waitFor(
        'every Ready proxy pod on L2',
        async () => {
          const pods = readyProxies();
          if (pods.length < 4) return false;
          const states = await Promise.all(
            pods.map(async (p) => {
              const res = await fetch(`http://${p.status!.podIP}:6635/status`);
              return ((await res.json()) as { l2: string }).l2;
            }),
          );
          return states.every((s) => s === 'ok');
        },
        60_000,
        200,
      ),
    );
    const proxyIp = (name: string) =>
      readyProxies().find((p) => p.metadata!.labels!['tiercache.io/proxy'] === name)!.status!
        .podIP!;
    const apac = `http://${proxyIp('tmdb-apac')}:6635`;
    const eu = `http://${proxyIp('crypto-eu')}:6635`;
    const first = await fetch(`${apac}/3/movie/550`);
    expect(first.status).toBe(200);
    expect(first.headers.get('x-cache')).toBe('MISS');
    const other = await fetch(`${eu}/3/movie/550`);
    expect(other.status).toBe(200);
    expect(other.headers.get('x-cache')).toBe('L2');
    expect(await other.json()).toEqual(await first.json());
    const prices = await fetch(`${eu}/api/latest_prices?symbols=BTC,ETH`);
    expect(prices.status).toBe(200);
    const body = (await prices.json()) as { prices: Record<string, unknown> };
    expect(Object.keys(body.prices)).toEqual(['BTC', 'ETH']);
  });

  it('hands a deleted master pod over to its replica, then is Ready again with every key', async () => {
    await cc.writeKeys('before-delete', 2000);
    const shard = cacheCluster().status!.shards![1]!;
    const keys = await cc.keysInSlots(shard.slots, 20);
    const uid = kubectlJson<V1Pod>(['get', 'pod', shard.master, '-n', NS]).metadata!.uid;
    // The master may move back to its re-created pod afterwards (a spread move), so the
    // handover is read from its Event, not from who is master at the end.
    const handovers = () =>
      cc
        .events()
        .filter(
          (e) => e.reason === 'HandedOver' && e.message.startsWith(`${shard.master} is going away`),
        ).length;
    const handoversBefore = handovers();
    const writer = cc.startPauseWriter(keys);
    await sleep(500);
    kubectl(['delete', 'pod', shard.master, '-n', NS, '--wait=false']);
    await timed('2. master pod deleted → replaced, Ready', async () => {
      await waitFor(
        'the pod to be replaced',
        () =>
          podsOf(REDIS).some((p) => p.metadata!.name === shard.master && p.metadata!.uid !== uid),
        60_000,
        250,
      );
      await waitReadyWithReplicas();
    });
    const gaps = await writer.stop();
    timings['2. deleted master: longest write gap (ms)'] = gaps.longestMs;
    expect(handovers()).toBeGreaterThan(handoversBefore);
    expect(gaps.failures).toBeLessThan(gaps.successes);
    expect(await cc.missingKeys('before-delete', 2000)).toEqual([]);
  });

  it('recovers from a crashed master process through Redis failover, keeping every key', async () => {
    await cc.withClient(async (cluster) => {
      const shard = cacheCluster().status!.shards![2]!;
      const keys = await cc.keysInSlots(shard.slots, 20);
      const writer = cc.startPauseWriter(keys);
      await sleep(500);
      cc.crash(shard.master);
      await timed('2. crashed master process → Ready', async () => {
        await waitFor(
          'writes to resume',
          async () => (await cluster.set(keys[0]!, 'x')) === 'OK',
          60_000,
          100,
        );
        await waitReadyWithReplicas();
      });
      const gaps = await writer.stop();
      timings['2. crashed master: longest write gap (ms)'] = gaps.longestMs;
      expect(await cc.missingKeys('before-delete', 2000)).toEqual([]);
    });
  });

  it('re-forms the cluster with every key after every Redis pod is deleted at once', async () => {
    await cc.writeKeys('before-all', 2000);
    const uidsBefore = podsOf(REDIS).map((p) => p.metadata!.uid!);
    kubectl([
      'delete',
      'pods',
      '-n',
      NS,
      '-l',
      'tiercache.io/cluster=cache,app.kubernetes.io/component=redis',
      '--wait=false',
    ]);
    await timed('3. all Redis pods deleted → Ready', async () => {
      await waitFor(
        'the pods to be replaced',
        () => {
          const now = podsOf(REDIS);
          return (
            now.length === 6 &&
            now.every((p) => !uidsBefore.includes(p.metadata!.uid!) && p.status?.podIP)
          );
        },
        90_000,
        250,
      );
      await waitReadyWithReplicas(120_000);
    });
    expect(await cc.missingKeys('before-all', 2000)).toEqual([]);
    expect(await cc.missingKeys('before-delete', 2000)).toEqual([]);
    // Longer than the test's waits, so a timeout reports the status it stopped at.
  }, 240_000);

  it('rolls a configuration change through every pod, replicas first, keeping every key', async () => {
    const keys = Array.from({ length: 50 }, (_, i) => `roll:${i}`);
    const revisions = () =>
      new Map(
        kubectlJson<{
          items: {
            metadata: { labels: Record<string, string> };
            status: { updateRevision: string };
          }[];
        }>(['get', 'statefulsets', '-n', NS, '-l', REDIS]).items.map((x) => [
          x.metadata.labels['tiercache.io/shard'],
          x.status.updateRevision,
        ]),
      );
    const before = revisions();
    const writer = cc.startPauseWriter(keys);
    kubectl([
      'patch',
      'cc',
      'cache',
      '-n',
      NS,
      '--type=merge',
      '-p',
      // A setting only a restart changes (maxMemory is applied live, without one).
      '{"spec":{"redis":{"nodeTimeoutMs":6000}}}',
    ]);
    await timed('rolling change → Ready', async () => {
      await waitFor(
        'every Redis pod to run the new revision',
        () => {
          const want = revisions();
          if ([...want].some(([shard, rev]) => rev === before.get(shard))) return false;
          const now = podsOf(REDIS);
          return (
            now.length === 6 &&
            now.every(
              (p) =>
                p.metadata!.deletionTimestamp === undefined &&
                p.metadata!.labels!['controller-revision-hash'] ===
                  want.get(p.metadata!.labels!['tiercache.io/shard']),
            )
          );
        },
        240_000,
        500,
      );
      await waitReadyWithReplicas();
    });
    const gaps = await writer.stop();
    timings['rolling change: longest write gap (ms)'] = gaps.longestMs;
    const conns = new Connections({ password: redisPassword(), timeoutMs: 3000 });
    try {
      for (const p of podsOf(REDIS)) {
        const [, value] = await conns.call<string[]>(
          `${p.status!.podIP}:6379`,
          'CONFIG',
          'GET',
          'cluster-node-timeout',
        );
        expect(Number(value), p.metadata!.name).toBe(6000);
      }
    } finally {
      conns.close();
    }
    expect(await cc.missingKeys('before-all', 2000)).toEqual([]);
  }, 300_000);

  it('scales 3 → 4 → 3 under proxy traffic with no 5xx and no key lost, surviving the loss of the leading operator mid-migration', async () => {
    await cc.writeKeys('scale', 30_000, 1024);
    const traffic = startProxyTraffic(NS);
    const leaderBefore = leaseHolder(OPERATOR_NS)!;
    expect(leaderBefore).toBeTruthy();

    kubectl(['scale', 'cc/cache', '-n', NS, '--replicas=4']);
    await timed('4. scale 3 → 4 → Ready', async () => {
      await timed('5. leader killed mid-migration', async () => {
        const before = await waitFor(
          'the migration to be under way',
          () => {
            const m = cacheCluster().status?.migration;
            return m && m.state !== 'Idle' && (m.slotsDone ?? 0) > 0 ? m : undefined;
          },
          60_000,
          50,
        );
        kubectl(['delete', 'pod', leaderBefore, '-n', OPERATOR_NS, '--grace-period=0', '--force']);
        await waitFor(
          'another operator to lead',
          () => {
            const h = leaseHolder(OPERATOR_NS);
            return h !== undefined && h !== leaderBefore;
          },
          60_000,
          250,
        );
        // status.migration tells the truth again: the new leader's own plan, from what Redis
        // holds (at most the slots the dead leader had left), not the dead leader's numbers.
        const after = await waitFor(
          'the new leader to report its migration',
          () => {
            const m = cacheCluster().status?.migration;
            const left = before.slotsTotal! - before.slotsDone!;
            return m && m.state !== 'Idle' && m.slotsTotal! > 0 && m.slotsTotal! <= left
              ? m
              : undefined;
          },
          120_000,
          100,
        );
        timings['5. migration status after the leader change'] =
          `${before.slotsDone}/${before.slotsTotal} → ${after.state} ${after.slotsDone}/${after.slotsTotal}`;
      });
      await waitReadyWithReplicas(240_000, 4);
    });
    expectBalanced(cacheCluster(), 4);

    kubectl(['scale', 'cc/cache', '-n', NS, '--replicas=3']);
    await timed('4. scale 4 → 3 → Ready', async () => {
      // The leader is stopped gracefully (SIGTERM) mid-drain: it finishes the slots in flight
      // before it lets go of the Lease, so its successor finds none open to repair.
      await waitFor(
        'the drain to start',
        () => cacheCluster().status?.migration?.state === 'Draining',
        60_000,
        50,
      );
      const leader = leaseHolder(OPERATOR_NS)!;
      const repairsBefore = migrationRepairs();
      kubectl(['delete', 'pod', leader, '-n', OPERATOR_NS, '--wait=false']);
      await waitFor(
        'another operator to lead',
        () => {
          const h = leaseHolder(OPERATOR_NS);
          return h !== undefined && h !== leader;
        },
        60_000,
        250,
      );
      await waitReadyWithReplicas(240_000, 3);
      expect(migrationRepairs()).toBe(repairsBefore);
      await waitFor(
        'shard 3 to be deleted',
        () =>
          kubectl(['get', 'statefulsets', '-n', NS, '-o', 'name']).includes('cache-shard-3')
            ? undefined
            : true,
        60_000,
        500,
      );
    });
    expectBalanced(cacheCluster(), 3);

    const served = await traffic.stop();
    timings['4. proxy requests during scaling'] = served.total;
    expect(served.total).toBeGreaterThan(100);
    expect(served.serverErrors).toBe(0);
    expect(await cc.missingKeys('scale', 30_000)).toEqual([]);
  }, 600_000);

  it('reports controller-runtime and tiercache metrics, health and readiness on one port', async () => {
    const holder = leaseHolder(OPERATOR_NS)!;
    const leader = kubectlJson<V1Pod>(['get', 'pod', holder, '-n', OPERATOR_NS]);
    const base = `http://${leader.status!.podIP}:8080`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    const key = `${NS}/cache`;
    expect(metrics).toMatch(
      /controller_runtime_reconcile_total\{controller="cachecluster",result="(success|requeue_after)"\} [1-9]/,
    );
    expect(metrics).toContain('controller_runtime_reconcile_time_seconds_bucket');
    expect(metrics).toContain('workqueue_depth{name="cachecluster"}');
    expect(metrics).toContain('leader_election_master_status{name="tiercache-operator"} 1');
    expect(metrics).toContain(`tiercache_cluster_state{cachecluster="${key}"} 1`);
    expect(metrics).toContain(`tiercache_ready_shards{cachecluster="${key}"} 3`);
    expect(metrics).toMatch(
      new RegExp(`tiercache_slots_migrated_total\\{cachecluster="${key}"\\} [1-9]`),
    );
  });

  it('removes everything the CacheCluster owned when it is deleted', async () => {
    kubectl(['delete', 'cc', 'cache', '-n', NS, '--wait=false']);
    const selector = 'tiercache.io/cluster=cache';
    await timed('7. delete', () =>
      waitFor(
        'every owned object to be gone',
        () =>
          kubectl([
            'get',
            'statefulsets,deployments,services,configmaps,secrets,poddisruptionbudgets,pods,persistentvolumeclaims',
            '-n',
            NS,
            '-l',
            selector,
            '-o',
            'name',
          ]).trim() === '',
        120_000,
        1000,
      ),
    );
  });
});
