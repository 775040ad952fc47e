/**
 * Everything a CacheCluster should own, as plain objects (pure): the reconciler applies them
 * with server-side apply. Secrets are built from values the reconciler read or generated.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { CacheCluster, CacheClusterSpec } from '../api/types.ts';
import { proxyAdminSecret, proxyDeployment, proxyService } from './proxy.ts';
import {
  type AuthKeys,
  authInUseSecret,
  authSecret,
  configMap,
  exporterSecret,
} from './redis-config.ts';
import {
  type Placement,
  redisService,
  shardDisruptionBudget,
  shardStatefulSet,
} from './redis-shard.ts';

export interface DesiredInputs {
  spec: CacheClusterSpec;
  /** Shards to keep: the spec's, or more while a scale-in is still draining shards. */
  shards: number;
  /** The Redis password (NO_PASSWORD when auth is disabled) and any rotation under way. */
  auth: AuthKeys;
  adminToken: string;
  /** The metrics sidecar's ACL password (used when spec.redis.exporter is enabled). */
  exporterPassword: string;
  placement: Placement;
  /** Image of the proxies unless a proxy names its own (the operator's image). */
  proxyImage: string;
}

export function desiredObjects(cc: CacheCluster, inputs: DesiredInputs): KubernetesObject[] {
  const { redis, proxies } = inputs.spec;
  const out: KubernetesObject[] = [configMap(cc, redis), redisService(cc)];
  // Also with auth disabled: nodes include its auth.conf, so turning auth on is live.
  out.push(
    authSecret(cc, redis, inputs.auth, inputs.exporterPassword),
    authInUseSecret(cc, inputs.auth.password),
  );
  if (redis.exporter.enabled) out.push(exporterSecret(cc, inputs.exporterPassword));
  for (let shard = 0; shard < inputs.shards; shard++) {
    out.push(shardStatefulSet(cc, shard, redis, inputs.placement));
    out.push(shardDisruptionBudget(cc, shard));
  }
  out.push(proxyAdminSecret(cc, inputs.adminToken));
  for (const proxy of proxies) {
    out.push(proxyDeployment(cc, proxy, inputs.proxyImage, inputs.auth.password));
    out.push(proxyService(cc, proxy));
  }
  return out;
}
