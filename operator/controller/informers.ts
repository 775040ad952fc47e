/**
 * Watches what the operator reacts to — CacheClusters, their CacheClusterBackups, and the
 * pods (Redis, proxies, backup Jobs'), StatefulSets and Deployments it manages — and turns every change into the key of the CacheCluster concerned.
 * A watch that fails is restarted with back-off; the CacheCluster cache is what reconciles read.
 * Cluster-wide by default; given namespaces, one set of watches per namespace, so the operator
 * needs no cluster-wide read of anything but nodes (a namespaced install).
 */
import {
  type Informer,
  type KubernetesObject,
  type ListPromise,
  makeInformer,
  type ObjectCache,
  type V1Pod,
} from '@kubernetes/client-node';
import type { Logger } from '../../lib/log.ts';
import {
  BACKUP_PLURAL,
  type CacheCluster,
  type CacheClusterBackup,
  GROUP,
  PLURAL,
  VERSION,
} from '../api/types.ts';
import { FIELD_MANAGER, LABEL_CLUSTER } from '../resources/names.ts';
import type { Kube } from '../runtime/kube.ts';
import { type ChangeEvent, statusOnlyFilter } from './change-filter.ts';
import { redisWentDown } from './pod-refs.ts';

const MANAGED = `app.kubernetes.io/managed-by=${FIELD_MANAGER}`;
const RESTART_BASE_MS = 500;
const RESTART_MAX_MS = 30_000;

/** Started watches: every one has listed its objects by the time startWatches resolves. */
export interface Watches {
  cacheCluster(namespace: string, name: string): CacheCluster | undefined;
  listCacheClusters(): CacheCluster[];
  /** Whether any CacheClusterBackup names this CacheCluster (from the watch's cache). */
  hasBackups(namespace: string, name: string): boolean;
  stop(): Promise<void>;
}

export const keyOf = (o: KubernetesObject) => `${o.metadata?.namespace}/${o.metadata?.name}`;

/**
 * `enqueue` gets the key of every change; `redisDown` also gets it when a pod event says a
 * Redis server stopped (the crash fast path).
 */
export async function startWatches(
  kube: Kube,
  log: Logger,
  namespaces: string[],
  enqueue: (key: string) => void,
  redisDown: (key: string) => void = () => undefined,
): Promise<Watches> {
  const { custom, core, apps } = kube;
  const informers: Informer<KubernetesObject>[] = [];
  let stopped = false;

  const watch = async <T extends KubernetesObject>(
    what: string,
    path: string,
    list: ListPromise<T>,
    keyFor: (o: T) => string | undefined,
    labelSelector?: string,
    isDown?: (o: T, deleted: boolean) => boolean,
    ignore?: (o: T, event: ChangeEvent) => boolean,
  ): Promise<Informer<T> & ObjectCache<T>> => {
    const informer = makeInformer(kube.config, path, list, labelSelector);
    const onChange = (event: ChangeEvent) => (o: T) => {
      const key = keyFor(o);
      if (!key || ignore?.(o, event)) return;
      if (isDown?.(o, event === 'delete')) redisDown(key);
      enqueue(key);
    };
    informer.on('add', onChange('add'));
    informer.on('update', onChange('update'));
    informer.on('delete', onChange('delete'));
    let failures = 0;
    informer.on('connect', () => {
      failures = 0;
    });
    informer.on('error', (err: unknown) => {
      if (stopped) return;
      failures += 1;
      const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** (failures - 1));
      log.warn(
        { watch: what, err: (err as Error)?.message, retryMs: delay },
        'watch failed; restarting',
      );
      setTimeout(() => {
        if (!stopped) informer.start().catch(() => undefined);
      }, delay).unref();
    });
    await informer.start();
    informers.push(informer as unknown as Informer<KubernetesObject>);
    return informer;
  };

  const ownerKey = (o: KubernetesObject) => {
    const cluster = o.metadata?.labels?.[LABEL_CLUSTER];
    return cluster ? `${o.metadata?.namespace}/${cluster}` : undefined;
  };
  // A CacheCluster's own status writes come back as updates: only a new generation (the spec)
  // or a deletion wakes its reconcile, so a steady cluster is not reconciled in a loop.
  const statusOnly = statusOnlyFilter();
  const caches = new Map<string | undefined, ObjectCache<CacheCluster>>();
  const backupCaches = new Map<string | undefined, ObjectCache<CacheClusterBackup>>();
  for (const namespace of namespaces.length > 0 ? namespaces : [undefined]) {
    const at = namespace === undefined ? '' : `/namespaces/${namespace}`;
    const scope = { labelSelector: MANAGED };
    // One list call per scope: the whole cluster, or this namespace.
    const scoped =
      <T>(all: () => T, one: (ns: string) => T) =>
      () =>
        namespace === undefined ? all() : one(namespace);
    const cacheClusters = await watch<CacheCluster>(
      'cacheclusters',
      `/apis/${GROUP}/${VERSION}${at}/${PLURAL}`,
      scoped(
        () => custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL }),
        (ns) =>
          custom.listNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            plural: PLURAL,
            namespace: ns,
          }),
      ),
      keyOf,
      undefined,
      undefined,
      statusOnly,
    );
    caches.set(namespace, cacheClusters);
    // What the CacheClusters own, found by the managed-by label and keyed to their owner.
    await watch<V1Pod>(
      'pods',
      `/api/v1${at}/pods`,
      scoped(
        () => core.listPodForAllNamespaces(scope),
        (ns) => core.listNamespacedPod({ ...scope, namespace: ns }),
      ),
      ownerKey,
      MANAGED,
      redisWentDown,
    );
    await watch(
      'statefulsets',
      `/apis/apps/v1${at}/statefulsets`,
      scoped(
        () => apps.listStatefulSetForAllNamespaces(scope),
        (ns) => apps.listNamespacedStatefulSet({ ...scope, namespace: ns }),
      ),
      ownerKey,
      MANAGED,
    );
    // A backup made by hand wakes its cluster's reconcile, which runs its Job.
    const backups = await watch<CacheClusterBackup>(
      'cacheclusterbackups',
      `/apis/${GROUP}/${VERSION}${at}/${BACKUP_PLURAL}`,
      scoped(
        () =>
          custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: BACKUP_PLURAL }),
        (ns) =>
          custom.listNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            plural: BACKUP_PLURAL,
            namespace: ns,
          }),
      ),
      (b) => `${b.metadata.namespace}/${b.spec.cacheCluster}`,
    );
    backupCaches.set(namespace, backups);
    await watch(
      'deployments',
      `/apis/apps/v1${at}/deployments`,
      scoped(
        () => apps.listDeploymentForAllNamespaces(scope),
        (ns) => apps.listNamespacedDeployment({ ...scope, namespace: ns }),
      ),
      ownerKey,
      MANAGED,
    );
  }
  return {
    cacheCluster: (namespace, name) =>
      (caches.get(undefined) ?? caches.get(namespace))?.get(name, namespace),
    listCacheClusters: () => [...caches.values()].flatMap((c) => c.list()),
    hasBackups: (namespace, name) =>
      ((backupCaches.get(undefined) ?? backupCaches.get(namespace))?.list(namespace) ?? []).some(
        (b) => b.spec.cacheCluster === name,
      ),
    async stop() {
      stopped = true;
      await Promise.all(informers.map((i) => i.stop()));
    },
  };
}
