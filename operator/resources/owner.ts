/** Owner references: everything a CacheCluster creates is garbage-collected with it. */
import type { V1ObjectMeta, V1OwnerReference } from '@kubernetes/client-node';
import { API_VERSION, type CacheCluster, KIND } from '../api/types.ts';

export function ownerReference(cc: CacheCluster): V1OwnerReference {
  return {
    apiVersion: API_VERSION,
    kind: KIND,
    name: cc.metadata.name,
    uid: cc.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

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
