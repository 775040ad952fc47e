/**
 * Which watch events of a CacheCluster are worth a reconcile (pure): its own status writes come
 * back as updates with the same generation, and reconciling on those would loop at steady state.
 */
import type { KubernetesObject } from '@kubernetes/client-node';

export type ChangeEvent = 'add' | 'update' | 'delete';

/**
 * A filter that says true for an update that changed neither the generation (the spec) nor
 * the deletion of the object since the last event for it.
 */
export function statusOnlyFilter(): (o: KubernetesObject, event: ChangeEvent) => boolean {
  const seen = new Map<string, string>();
  return (o, event) => {
    const key = `${o.metadata?.namespace}/${o.metadata?.name}`;
    if (event === 'delete') {
      seen.delete(key);
      return false;
    }
    const version = `${o.metadata?.generation}/${o.metadata?.deletionTimestamp ?? ''}`;
    const same = event === 'update' && seen.get(key) === version;
    seen.set(key, version);
    return same;
  };
}
