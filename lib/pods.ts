/** Facts about a pod object that the operator, the pod runner and the tests all read. */
import type { V1Pod } from '@kubernetes/client-node';

/** A pod whose Ready condition is True. */
export function isPodReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
}
