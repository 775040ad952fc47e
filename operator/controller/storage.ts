/**
 * Growing `persistence.size`. A StatefulSet's volumeClaimTemplates cannot change, so the claims
 * of its pods are expanded in place (the API server allows it only where the StorageClass
 * does) and, once every claim took the new size, the StatefulSet is deleted with orphan
 * propagation: its pods keep running, and the next reconcile applies it again with the new
 * size and it adopts them. A refused expansion leaves the StatefulSet alone and is reported.
 */
import {
  PatchStrategy,
  setHeaderOptions,
  type V1PersistentVolumeClaim,
  type V1StatefulSet,
} from '@kubernetes/client-node';
import type { CacheCluster, CacheClusterSpec } from '../api/types.ts';
import { LABEL_SHARD, labelSelector, shardSelector } from '../resources/names.ts';
import { quantityBytes } from '../resources/redis-config.ts';
import type { Kube } from '../runtime/kube.ts';
import { describeError } from './errors.ts';

export interface StorageGrowth {
  /** StatefulSets deleted (pods orphaned) to be applied again with the new size. */
  recreating: Set<string>;
  /** "<what>: <why>" for claims the API server would not expand. */
  refused: string[];
  /** What was done, for an Event. */
  said: string[];
}

const claimSize = (sts: V1StatefulSet): string | undefined =>
  sts.spec?.volumeClaimTemplates?.[0]?.spec?.resources?.requests?.storage;

/** Bytes of a storage quantity, or undefined for a form the parser does not read. */
function bytes(q: string | undefined): number | undefined {
  try {
    return q === undefined ? undefined : quantityBytes(q);
  } catch {
    return undefined;
  }
}

export async function growStorage(
  kube: Kube,
  cc: CacheCluster,
  spec: CacheClusterSpec,
  sets: V1StatefulSet[],
): Promise<StorageGrowth> {
  const out: StorageGrowth = { recreating: new Set(), refused: [], said: [] };
  const { persistence } = spec.redis;
  const wanted = bytes(persistence.size);
  if (!persistence.enabled || wanted === undefined) return out;
  const { namespace } = cc.metadata;
  for (const sts of sets) {
    const name = sts.metadata!.name!;
    // Still going away (the garbage collector orphans its pods first): not applied meanwhile.
    if (sts.metadata?.deletionTimestamp) {
      out.recreating.add(name);
      continue;
    }
    const has = bytes(claimSize(sts));
    if (has === undefined || has >= wanted) continue;
    const shard = Number(sts.metadata?.labels?.[LABEL_SHARD]);
    const claims = await kube.core.listNamespacedPersistentVolumeClaim({
      namespace,
      labelSelector: labelSelector(shardSelector(cc, shard)),
    });
    const failed = await expandClaims(kube, claims.items, persistence.size);
    if (failed.length > 0) {
      out.refused.push(...failed);
      continue;
    }
    await kube.apps.deleteNamespacedStatefulSet({ name, namespace, propagationPolicy: 'Orphan' });
    out.recreating.add(name);
    out.said.push(
      `${name}: ${claims.items.length} claims expanded to ${persistence.size}; the StatefulSet is re-created with it, its pods keep running`,
    );
  }
  return out;
}

/** Asks for `size` on every claim that has less; returns the refusals. */
async function expandClaims(
  kube: Kube,
  claims: V1PersistentVolumeClaim[],
  size: string,
): Promise<string[]> {
  const failed: string[] = [];
  for (const claim of claims) {
    if ((bytes(claim.spec?.resources?.requests?.storage) ?? 0) >= (bytes(size) ?? 0)) continue;
    try {
      await kube.core.patchNamespacedPersistentVolumeClaim(
        {
          name: claim.metadata!.name!,
          namespace: claim.metadata!.namespace!,
          body: { spec: { resources: { requests: { storage: size } } } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (err) {
      failed.push(`PersistentVolumeClaim ${claim.metadata?.name}: ${describeError(err)}`);
    }
  }
  return failed;
}
