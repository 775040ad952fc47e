/**
 * Smoke test of the local control plane (hack/local-cluster): real API server, scheduler and
 * controllers, kwok nodes, and the pod runner starting real redis-server processes.
 */
import { Resolver } from 'node:dns/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterDown } from '../../hack/local-cluster/down.ts';
import { network, ports } from '../../hack/local-cluster/layout.ts';
import { isAlive } from '../../hack/local-cluster/processes.ts';
import { clusterUp } from '../../hack/local-cluster/up.ts';
import { execInPod, kubectl, pods, waitForReadyPods } from '../helpers/kube.ts';
import { waitFor } from '../helpers/wait.ts';

const ns = `smoke-${Date.now().toString(36)}`;
const fqdn = (pod: string) => `${pod}.redis.${ns}.svc.${network.clusterDomain}`;

const manifests = `
apiVersion: v1
kind: Service
metadata: { name: redis, namespace: ${ns} }
spec:
  clusterIP: None
  selector: { app: redis }
  ports: [{ name: redis, port: 6379 }]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: { name: redis, namespace: ${ns} }
spec:
  serviceName: redis
  replicas: 3
  podManagementPolicy: Parallel
  selector: { matchLabels: { app: redis } }
  template:
    metadata: { labels: { app: redis } }
    spec:
      terminationGracePeriodSeconds: 5
      containers:
        - name: redis
          image: redis:7.2
          args: ["--dir", "/data", "--appendonly", "no", "--save", ""]
          ports: [{ name: redis, containerPort: 6379 }]
          readinessProbe:
            tcpSocket: { port: redis }
            periodSeconds: 1
          volumeMounts: [{ name: data, mountPath: /data }]
  volumeClaimTemplates:
    - metadata: { name: data }
      spec:
        accessModes: [ReadWriteOnce]
        resources: { requests: { storage: 1Gi } }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: proxy-config, namespace: ${ns} }
data: { region: eu-test-1 }
---
apiVersion: v1
kind: Secret
metadata: { name: proxy-secret, namespace: ${ns} }
stringData: { adminToken: e2e-admin-token }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: proxy, namespace: ${ns} }
spec:
  replicas: 1
  selector: { matchLabels: { app: proxy } }
  template:
    metadata: { labels: { app: proxy } }
    spec:
      containers:
        - name: proxy
          image: tiercache:dev
          args: [proxy]
          env:
            - { name: REGION, valueFrom: { configMapKeyRef: { name: proxy-config, key: region } } }
            - { name: ADMIN_TOKEN, valueFrom: { secretKeyRef: { name: proxy-secret, key: adminToken } } }
            - { name: POD_IP, valueFrom: { fieldRef: { fieldPath: status.podIP } } }
          ports: [{ name: http, containerPort: 6635 }]
          readinessProbe:
            httpGet: { path: /ready, port: http }
            periodSeconds: 1
`;

function redisAt(ip: string): Redis {
  const r = new Redis({
    host: ip,
    port: 6379,
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  });
  r.on('error', () => {});
  return r;
}

async function ping(ip: string): Promise<string> {
  const r = redisAt(ip);
  try {
    await r.connect();
    return await r.ping();
  } finally {
    r.disconnect();
  }
}

beforeAll(() => {
  kubectl(['create', 'namespace', ns]);
  kubectl(['apply', '-f', '-'], manifests);
});

afterAll(() => {
  // The control plane itself is stopped by the global teardown (other suites use it next).
  try {
    kubectl(['delete', 'namespace', ns, '--wait=false']);
  } catch {
    // it went down with a failed test; the teardown removes its state
  }
});

describe('the local control plane', () => {
  it('runs a StatefulSet of 3 redis pods as real redis-server processes at their pod IPs', async () => {
    const ready = await waitForReadyPods(ns, 'app=redis', 3, 90_000);
    const ips = ready.map((p) => p.ip);
    expect(new Set(ips).size).toBe(3);
    for (const ip of ips) {
      expect(ip).toMatch(/^127\.10\.\d+\.\d+$/);
      expect(await ping(ip)).toBe('PONG');
    }
  });

  it('runs the tiercache image as the local CLI, with env from a ConfigMap, a Secret and the pod', async () => {
    const [proxy] = await waitForReadyPods(ns, 'app=proxy', 1, 60_000);
    const status = await (await fetch(`http://${proxy!.ip}:6635/status`)).json();
    expect(status).toMatchObject({ region: 'eu-test-1', demo_data: true });
    const clear = await fetch(`http://${proxy!.ip}:6635/cache/clear?type=memory`, {
      method: 'POST',
      headers: { authorization: 'Bearer e2e-admin-token' },
    });
    expect(clear.status).toBe(200);
  });

  it('resolves pods by their DNS names, from the machine and from inside a pod', async () => {
    const list = pods(ns, 'app=redis');
    const resolver = new Resolver();
    resolver.setServers([network.dnsIp]);
    for (const p of list) expect(await resolver.resolve4(fqdn(p.name))).toEqual([p.ip]);
    expect((await resolver.resolve4(`redis.${ns}.svc.${network.clusterDomain}`)).sort()).toEqual(
      list.map((p) => p.ip).sort(),
    );

    const from = list.find((p) => p.name === 'redis-0')!;
    const out = execInPod(from.pid!, ['redis-cli', '-h', `redis-2.redis.${ns}.svc`, 'ping']);
    expect(out.stdout.trim()).toBe('PONG');
  });

  it('restarts a killed process in place, counting the restart', async () => {
    const before = pods(ns, 'app=redis').find((p) => p.name === 'redis-1')!;
    process.kill(before.pid!, 'SIGKILL');
    const after = await waitFor(
      'redis-1 to be restarted',
      () => {
        const p = pods(ns, 'app=redis').find((x) => x.name === 'redis-1');
        return p && p.restarts >= 1 && p.ready && p.pid !== before.pid ? p : undefined;
      },
      30_000,
      250,
    );
    expect(after.ip).toBe(before.ip);
    expect(await ping(after.ip)).toBe('PONG');
  });

  it('stops a deleted pod’s process and starts the replacement on the same claim', async () => {
    const old = pods(ns, 'app=redis').find((p) => p.name === 'redis-0')!;
    const r = redisAt(old.ip);
    await r.connect();
    await r.set('survives', 'pod replacement');
    await r.save();
    r.disconnect();

    kubectl(['delete', 'pod', '-n', ns, 'redis-0', '--wait=false']);
    await waitFor('the old redis-0 process to stop', () => !isAlive(old.pid!), 20_000, 100);
    const fresh = await waitFor(
      'a new redis-0',
      () => {
        const p = pods(ns, 'app=redis').find((x) => x.name === 'redis-0');
        return p && p.uid !== old.uid && p.ready ? p : undefined;
      },
      60_000,
      250,
    );
    const again = redisAt(fresh.ip);
    await again.connect();
    expect(await again.get('survives')).toBe('pod replacement');
    again.disconnect();
  });

  it('authenticates a pod as its ServiceAccount and enforces RBAC', async () => {
    const p = pods(ns, 'app=redis').find((x) => x.name === 'redis-2')!;
    const token = execInPod(p.pid!, [
      'cat',
      '/var/run/secrets/kubernetes.io/serviceaccount/token',
    ]).stdout.trim();
    expect(token.split('.')).toHaveLength(3);
    const ca = execInPod(p.pid!, [
      'cat',
      '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
    ]).stdout;
    expect(ca).toContain('BEGIN CERTIFICATE');
    const { Agent, request } = await import('undici');
    const agent = new Agent({ connect: { ca } });
    const call = async (path: string) =>
      (
        await request(`https://127.0.0.1:${ports.apiserver}${path}`, {
          dispatcher: agent,
          headers: { authorization: `Bearer ${token}` },
        })
      ).statusCode;
    expect(await call(`/api/v1/namespaces/${ns}/secrets`)).toBe(403);
    kubectl(['create', 'role', 'pod-reader', '-n', ns, '--verb=list', '--resource=pods']);
    kubectl([
      'create',
      'rolebinding',
      'pod-reader',
      '-n',
      ns,
      '--role=pod-reader',
      `--serviceaccount=${ns}:default`,
    ]);
    await waitFor(
      'the new permission',
      async () => (await call(`/api/v1/namespaces/${ns}/pods`)) === 200,
      10_000,
    );
    expect(await call(`/api/v1/namespaces/${ns}/secrets`)).toBe(403);
    await agent.close();
  });

  it('cluster:down leaves no process behind, and cluster:up brings it back', async () => {
    const pids = pods(ns, 'app=redis').flatMap((p) => (p.pid ? [p.pid] : []));
    expect(pids.length).toBe(3);
    await clusterDown();
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    // The other e2e suites of this run use the same control plane.
    await clusterUp();
    expect(kubectl(['get', '--raw', '/readyz'])).toBe('ok');
  });
});
