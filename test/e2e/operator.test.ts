/**
 * The operator as users run it: the chart installed with helm (the operator runs as pods with
 * its own ServiceAccount and leader election), the sample CacheCluster applied, and then what
 * users rely on — Ready with every slot served and replicas kept off their master's node, both
 * regional proxies serving and sharing L2 — and everything it owned gone once it is deleted.
 * The proxies' upstream is the demo upstream running as a pod (these machines have no internet).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadYaml, type V1Pod } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CacheCluster } from '../../operator/api/types.ts';
import { checkCluster } from '../../operator/redis/check.ts';
import { Connections } from '../../operator/redis/connections.ts';
import { observe } from '../../operator/redis/observe.ts';
import { helm, kubectl, kubectlJson } from '../helpers/kube.ts';
import { waitFor } from '../helpers/wait.ts';

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));
const CHART = here('../../charts/tiercache');
const SAMPLE = here('../../crds/samples/cachecluster.yaml');
const IMAGE = process.env.E2E_IMAGE ?? 'tiercache:0.1.0';
const [REPO, TAG] = IMAGE.split(':') as [string, string];
const NS = `e2e-${process.pid}`;
const OPERATOR_NS = `tiercache-${process.pid}`;
const RELEASE = `tc${process.pid}`;
const API_KEY = 'e2e-api-key';
const UPSTREAM = `http://fake-upstream.${NS}.svc:8000`;

const timings: Record<string, number> = {};
const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
  const started = Date.now();
  try {
    return await fn();
  } finally {
    timings[name] = (Date.now() - started) / 1000;
  }
};

function cacheCluster(): CacheCluster {
  return kubectlJson<CacheCluster>(['get', 'cc', 'cache', '-n', NS]);
}
const condition = (cc: CacheCluster, type: string) =>
  cc.status?.conditions?.find((c) => c.type === type);

function waitReady(timeoutMs = 180_000): Promise<CacheCluster> {
  return waitFor(
    'the CacheCluster to be Ready',
    () => {
      const cc = cacheCluster();
      const ready = condition(cc, 'Ready');
      return ready?.status === 'True' && ready.observedGeneration === cc.metadata.generation
        ? cc
        : undefined;
    },
    timeoutMs,
    500,
  );
}

function podsOf(selector: string): V1Pod[] {
  return kubectlJson<{ items: V1Pod[] }>(['get', 'pods', '-n', NS, '-l', selector]).items;
}

function redisPassword(): string {
  const b64 = kubectl([
    'get',
    'secret',
    'cache-redis-auth',
    '-n',
    NS,
    '-o',
    'jsonpath={.data.password}',
  ]);
  return Buffer.from(b64, 'base64').toString('utf8');
}

const FAKE_UPSTREAM = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'fake-upstream' },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: 'fake-upstream' } },
    template: {
      metadata: { labels: { app: 'fake-upstream' } },
      spec: {
        containers: [
          {
            name: 'upstream',
            image: IMAGE,
            args: ['demo-upstream', '--port', '8000', '--host', '$(POD_IP)', '--api-key', API_KEY],
            env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
            readinessProbe: { tcpSocket: { port: 8000 }, periodSeconds: 1 },
          },
        ],
      },
    },
  },
};

beforeAll(async () => {
  kubectl(['create', 'namespace', NS]);
  for (const secret of ['tmdb', 'coingecko'])
    kubectl(['create', 'secret', 'generic', secret, '-n', NS, `--from-literal=apiKey=${API_KEY}`]);
  kubectl(['apply', '-n', NS, '-f', '-'], JSON.stringify(FAKE_UPSTREAM));
  kubectl(['expose', 'deployment', 'fake-upstream', '-n', NS, '--port=8000']);
  await timed('helm install', async () => {
    helm([
      'install',
      RELEASE,
      CHART,
      '--namespace',
      OPERATOR_NS,
      '--create-namespace',
      '--set',
      `image.repository=${REPO}`,
      '--set',
      `image.tag=${TAG}`,
      '--set',
      'leaderElection.leaseDurationSeconds=6',
      '--wait',
      '--timeout',
      '120s',
    ]);
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
    const sample = loadYaml<CacheCluster>(readFileSync(SAMPLE, 'utf8'));
    for (const p of sample.spec.proxies) {
      p.env = {
        ...p.env,
        TMDB_API_URL: UPSTREAM,
        TMDB_IMAGE_URL: UPSTREAM,
        CRYPTO_API_URL: `${UPSTREAM}/api/v3`,
      };
    }
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

    const proxyIp = (name: string) =>
      podsOf(`tiercache.io/proxy=${name}`).find((p) =>
        p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
      )!.status!.podIP!;
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
