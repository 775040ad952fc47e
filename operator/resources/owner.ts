/**
 * Owner references: everything a CacheCluster creates is garbage-collected with it (and a
 * backup's Job with its CacheClusterBackup).
 */
import type { V1ObjectMeta, V1OwnerReference } from '@kubernetes/client-node';
import { API_VERSION, type CacheCluster, KIND } from '../api/types.ts';

/** The controller reference to one of tiercache's own objects of `kind`. */
export function controllerReference(
  kind: string,
  owner: { name: string; uid?: string | undefined },
): V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind,
    name: owner.name,
    uid: owner.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

export const ownerReference = (cc: CacheCluster): V1OwnerReference =>
  controllerReference(KIND, cc.metadata);

/** Metadata of an owned object in the CacheCluster's namespace. */
export function ownedMeta(
  cc: CacheCluster,
  name: string,
  labels: Record<string, string>,
): V1ObjectMeta {
  return {
    name,
    namespace: cc.metadata.namespace,
    labels,
    ownerReferences: [ownerReference(cc)],
  };
}
