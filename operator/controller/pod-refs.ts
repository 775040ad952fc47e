/**
 * What the operator reads from a Redis pod object (pure): the PodRef the planners work on, and
 * whether a pod event says its Redis went down (the crash fast path's trigger).
 */
import type { V1Pod } from '@kubernetes/client-node';
import { isPodReady } from '../../lib/pods.ts';
import { formatAddr } from '../../lib/redis/addr.ts';
import { LABEL_COMPONENT, LABEL_SHARD, REDIS_PORT } from '../resources/names.ts';
import type { PodRef } from './cluster-pods.ts';

const redisContainer = (pod: V1Pod) =>
  pod.status?.containerStatuses?.find((c) => c.name === 'redis');

/**
 * `revision`: the revision each shard's StatefulSet wants (by shard label); `zones`: the zone
 * of each Kubernetes node that has one.
 */
export function podRef(
  pod: V1Pod,
  revision: Map<string | undefined, string | undefined>,
  zones: Map<string, string>,
): PodRef {
  const name = pod.metadata!.name!;
  const terminating = pod.metadata?.deletionTimestamp != null;
  const ip = pod.status?.podIP;
  const node = pod.spec?.nodeName;
  const shard = pod.metadata?.labels?.[LABEL_SHARD];
  const wanted = revision.get(shard);
  const current = pod.metadata?.labels?.['controller-revision-hash'];
  return {
    name,
    shard: Number(shard),
    ordinal: Number(name.slice(name.lastIndexOf('-') + 1)),
    addr: ip ? formatAddr({ host: ip, port: REDIS_PORT }) : undefined,
    ready: !terminating && isPodReady(pod),
    running: redisContainer(pod)?.state?.running !== undefined,
    terminating,
    outdated: wanted !== undefined && current !== undefined && current !== wanted,
    domain: node ? (zones.get(node) ?? node) : undefined,
  };
}

/**
 * A Redis pod whose server has stopped or is stopping: its container exited, or the pod is
 * being deleted or is gone. Only pods that had started count (a new pod is not a crash).
 */
export function redisWentDown(pod: V1Pod, deleted: boolean): boolean {
  if (pod.metadata?.labels?.[LABEL_COMPONENT] !== 'redis') return false;
  if (deleted || pod.metadata?.deletionTimestamp != null) return true;
  const c = redisContainer(pod);
  if (c === undefined || c.lastState?.terminated == null) return false;
  // Exited and waiting to restart, or restarted and not yet Ready (a new, empty node).
  return c.state?.running === undefined || !c.ready;
}
