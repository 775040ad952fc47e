/**
 * Watches what the operator reacts to — CacheClusters, and the pods, StatefulSets and
 * Deployments it manages — and turns every change into the key of the CacheCluster concerned.
 * A watch that fails is restarted with back-off; the CacheCluster cache is what reconciles read.
 */
import {
  type Informer,
  type KubernetesObject,
  type ListPromise,
  makeInformer,
  type ObjectCache,
} from '@kubernetes/client-node';
import type { Logger } from '../../lib/log.ts';
import { type CacheCluster, GROUP, PLURAL, VERSION } from '../api/types.ts';
import { FIELD_MANAGER, LABEL_CLUSTER } from '../resources/names.ts';
import type { Kube } from './kube.ts';

const MANAGED = `app.kubernetes.io/managed-by=${FIELD_MANAGER}`;
const RESTART_BASE_MS = 500;
const RESTART_MAX_MS = 30_000;

/** Started watches: every one has listed its objects by the time startWatches resolves. */
export interface Watches {
  cacheClusters: ObjectCache<CacheCluster>;
  stop(): Promise<void>;
}

export const keyOf = (o: KubernetesObject) => `${o.metadata?.namespace}/${o.metadata?.name}`;

export async function startWatches(
  kube: Kube,
  log: Logger,
  enqueue: (key: string) => void,
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
  ): Promise<Informer<T> & ObjectCache<T>> => {
    const informer = makeInformer(kube.config, path, list, labelSelector);
    const onChange = (o: T) => {
      const key = keyFor(o);
      if (key) enqueue(key);
    };
    informer.on('add', onChange);
    informer.on('update', onChange);
    informer.on('delete', onChange);
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
  const cacheClusters = await watch<CacheCluster>(
    'cacheclusters',
    `/apis/${GROUP}/${VERSION}/${PLURAL}`,
    () => custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL }),
    keyOf,
  );
  // What the CacheClusters own, found by the managed-by label and keyed to their owner.
  const owned: [string, string, ListPromise<KubernetesObject>][] = [
    ['pods', '/api/v1/pods', () => core.listPodForAllNamespaces({ labelSelector: MANAGED })],
    [
      'statefulsets',
      '/apis/apps/v1/statefulsets',
      () => apps.listStatefulSetForAllNamespaces({ labelSelector: MANAGED }),
    ],
    [
      'deployments',
      '/apis/apps/v1/deployments',
      () => apps.listDeploymentForAllNamespaces({ labelSelector: MANAGED }),
    ],
  ];
  for (const [what, path, list] of owned) await watch(what, path, list, ownerKey, MANAGED);
  return {
    cacheClusters,
    async stop() {
      stopped = true;
      await Promise.all(informers.map((i) => i.stop()));
    },
  };
}
