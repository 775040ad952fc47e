/**
 * The pod runner: the "kubelet" of the local cluster's fake nodes. It watches pods bound to
 * those nodes and runs each one's real processes (PodWorker), allocates pod IPs inside each
 * node's 127.x.y.0/24, serves cluster DNS, finishes graceful deletions, and on SIGTERM stops
 * every pod process it started.
 */
import { readFileSync } from 'node:fs';
import {
  CoreV1Api,
  KubeConfig,
  makeInformer,
  PatchStrategy,
  setHeaderOptions,
  type V1Pod,
  type V1PodStatus,
} from '@kubernetes/client-node';
import { NODES, network } from '../layout.ts';
import { startDns } from './dns-server.ts';
import type { ClusterReader } from './materialise.ts';
import { closeTiercacheImage, imageRuntime } from './oci.ts';
import { PodWorker } from './pod-worker.ts';
import { expand, provision } from './provisioner.ts';

const log = (msg: string) => process.stdout.write(`${new Date().toISOString()} ${msg}\n`);
const runtime = imageRuntime();

const kc = new KubeConfig();
kc.loadFromDefault();
const core = kc.makeApiClient(CoreV1Api);
const cluster = kc.getCurrentCluster()!;
const apiUrl = new URL(cluster.server);
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const ourNodes = new Map<string, (typeof NODES)[number]>(NODES.map((n) => [n.name, n]));
const workers = new Map<string, PodWorker>(); // by pod uid
const finishing = new Set<string>();

const reader: ClusterReader = {
  async configMap(namespace, name) {
    try {
      return (await core.readNamespacedConfigMap({ name, namespace })).data ?? {};
    } catch {
      return undefined;
    }
  },
  async secret(namespace, name) {
    try {
      const data = (await core.readNamespacedSecret({ name, namespace })).data ?? {};
      return Object.fromEntries(
        Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
      );
    } catch {
      return undefined;
    }
  },
  async token(pod, audiences, expirationSeconds) {
    const res = await core.createNamespacedServiceAccountToken({
      name: pod.spec?.serviceAccountName ?? 'default',
      namespace: pod.metadata!.namespace!,
      body: {
        spec: {
          audiences: audiences ?? [],
          expirationSeconds,
          boundObjectRef: {
            kind: 'Pod',
            apiVersion: 'v1',
            name: pod.metadata!.name!,
            uid: pod.metadata!.uid!,
          },
        },
      },
    });
    const token = res.status?.token;
    if (!token)
      throw new Error(
        `no token issued for ${pod.metadata!.namespace}/${pod.spec?.serviceAccountName}`,
      );
    return token;
  },
  caCert: () => readFileSync(cluster.caFile!, 'utf8'),
  apiserver: { host: apiUrl.hostname, port: apiUrl.port || '443' },
};

function allocateIp(node: (typeof NODES)[number], pods: readonly V1Pod[]): string {
  const prefix = node.podCidr.replace(/0\/24$/, '');
  const used = new Set(pods.map((p) => p.status?.podIP).filter(Boolean));
  for (const w of workers.values()) used.add(w.ip);
  for (let host = 2; host < 255; host++) if (!used.has(prefix + host)) return prefix + host;
  throw new Error(`no free pod IP left in ${node.podCidr}`);
}

async function writeStatus(pod: V1Pod, status: V1PodStatus): Promise<void> {
  await core.patchNamespacedPodStatus(
    { name: pod.metadata!.name!, namespace: pod.metadata!.namespace!, body: { status } },
    mergePatch,
  );
}

const podInformer = makeInformer(kc, '/api/v1/pods', () => core.listPodForAllNamespaces());
const svcInformer = makeInformer(kc, '/api/v1/services', () => core.listServiceForAllNamespaces());
const pvcInformer = makeInformer(kc, '/api/v1/persistentvolumeclaims', () =>
  core.listPersistentVolumeClaimForAllNamespaces(),
);

/**
 * Claims of pods that are still stopping: a new pod mounting one waits until the old pod's
 * processes are gone, as a ReadWriteOnce volume is unmounted before it is mounted again —
 * two live Redis processes must never share one data directory (and node identity).
 */
const claimsReleased = new Map<string, Promise<void>>();
const claimsOf = (pod: V1Pod): string[] =>
  (pod.spec?.volumes ?? []).flatMap((v) =>
    v.persistentVolumeClaim
      ? [`${pod.metadata!.namespace}/${v.persistentVolumeClaim.claimName}`]
      : [],
  );

function stopWorker(worker: PodWorker, stopping: Promise<void>): Promise<void> {
  for (const claim of claimsOf(worker.pod)) {
    const released = stopping.finally(() => {
      if (claimsReleased.get(claim) === released) claimsReleased.delete(claim);
    });
    claimsReleased.set(claim, released);
  }
  return stopping;
}

async function finishDeletion(pod: V1Pod): Promise<void> {
  const uid = pod.metadata!.uid!;
  if (finishing.has(uid)) return;
  finishing.add(uid);
  try {
    const worker = workers.get(uid);
    if (worker) {
      log(`${worker.name}: stopping (grace ${pod.metadata?.deletionGracePeriodSeconds ?? 30} s)`);
      await stopWorker(worker, worker.stop(pod.metadata?.deletionGracePeriodSeconds ?? 30));
      workers.delete(uid);
    }
    await core
      .deleteNamespacedPod({
        name: pod.metadata!.name!,
        namespace: pod.metadata!.namespace!,
        // In the body: a body's DeleteOptions take precedence over the query parameter.
        body: { gracePeriodSeconds: 0, preconditions: { uid } },
      })
      .catch((err: { code?: number; message?: string }) => {
        if (err.code !== 404)
          log(
            `${pod.metadata!.namespace}/${pod.metadata!.name}: final delete failed: ${err.message}`,
          );
      });
  } finally {
    finishing.delete(uid);
  }
}

function onPod(pod: V1Pod): void {
  const node = ourNodes.get(pod.spec?.nodeName ?? '');
  if (!node) return;
  const uid = pod.metadata!.uid!;
  if (pod.metadata?.deletionTimestamp) {
    void finishDeletion(pod);
    return;
  }
  const existing = workers.get(uid);
  if (existing) {
    existing.pod = pod;
    return;
  }
  if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
  const ip = pod.status?.podIP ?? allocateIp(node, podInformer.list());
  const worker = new PodWorker(pod, ip, {
    cluster: reader,
    writeStatus,
    log,
    imageRuntime: runtime,
  });
  workers.set(uid, worker);
  const held = claimsOf(pod).flatMap((c) => {
    const released = claimsReleased.get(c);
    return released ? [released] : [];
  });
  if (held.length > 0)
    log(`${worker.name}: waiting for its claims to be released by the pod before it`);
  log(`${worker.name}: starting on ${node.name} at ${ip}`);
  void Promise.allSettled(held).then(() => worker.start());
}

function onPodGone(pod: V1Pod): void {
  const worker = workers.get(pod.metadata!.uid!);
  if (!worker) return;
  workers.delete(pod.metadata!.uid!);
  log(`${worker.name}: deleted from the API; stopping its processes`);
  void stopWorker(worker, worker.stop(2, false)); // already gone from the API: no hooks
}

/** Informers restart with back-off when their watch fails. */
function keepWatching<_T>(
  name: string,
  informer: { start(): Promise<void>; on(ev: 'error', cb: (err: unknown) => void): void },
): void {
  let attempt = 0;
  informer.on('error', (err: unknown) => {
    attempt += 1;
    const delay = Math.min(500 * 2 ** attempt, 10_000);
    log(`${name} watch failed (${(err as Error)?.message ?? err}); restarting in ${delay} ms`);
    setTimeout(() => void informer.start().then(() => (attempt = 0)), delay);
  });
}

podInformer.on('add', onPod);
podInformer.on('update', onPod);
podInformer.on('delete', onPodGone);
keepWatching('pod', podInformer);
keepWatching('service', svcInformer);
keepWatching('claim', pvcInformer);
pvcInformer.on('add', (claim) => void provision(core, claim, log));
pvcInformer.on('update', (claim) => {
  void provision(core, claim, log);
  void expand(core, claim, log);
});

const stopDns = await startDns(network.dnsIp, network.clusterDomain, () => ({
  pods: podInformer.list(),
  services: svcInformer.list(),
}));
await Promise.all([podInformer.start(), svcInformer.start(), pvcInformer.start()]);
log(
  `pod runner ready: nodes ${[...ourNodes.keys()].join(', ')}; cluster DNS on ${network.dnsIp}:53; tiercache images run ${runtime === 'oci' ? 'from localhost/tiercache:dev under runc' : 'as the checkout'}`,
);

let shuttingDown = false;
async function shutdown(signal: string): Promise<void> {
  if (shuttingDown) return;
  shuttingDown = true;
  log(`${signal}: stopping ${workers.size} pods' processes`);
  await podInformer.stop();
  await svcInformer.stop();
  await pvcInformer.stop();
  await Promise.all(
    [...workers.values()].map((w) =>
      // The whole cluster is going down: no preStop hooks, a short grace.
      w.stop(Math.min(w.pod.spec?.terminationGracePeriodSeconds ?? 30, 10), false),
    ),
  );
  await stopDns();
  closeTiercacheImage();
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
