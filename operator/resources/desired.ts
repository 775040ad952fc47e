/**
 * Everything a CacheCluster should own, as plain objects (pure): the reconciler applies them
 * with server-side apply. Secrets are built from values the reconciler read or generated.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { CacheCluster, CacheClusterSpec } from '../api/types.ts';
import { tlsSecretName } from './names.ts';
import { type ProxyLogin, proxyAdminSecret, proxyDeployment, proxyService } from './proxy.ts';
import {
  type AuthKeys,
  authInUseSecret,
  authSecret,
  configMap,
  exporterSecret,
  operatorUserSecret,
  operatorUserWanted,
  proxyUserSecret,
  proxyUserWanted,
  replicationUserSecret,
  replicationUserWanted,
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
  /** The proxies' ACL user's password (given when spec.redis.auth.users.proxies is on). */
  proxyUserPassword?: string | undefined;
  /** The replication ACL user's password (given when spec.redis.auth.users.replication is on). */
  replicationUserPassword?: string | undefined;
  /** The operator's ACL user's password (given when spec.redis.auth.users.operator is on). */
  operatorUserPassword?: string | undefined;
  /** How the proxies log in now: their own user only once every node knows it. */
  proxyLogin: ProxyLogin;
  /** The CA of a TLS CacheCluster, from its certificate Secret. */
  tlsCa?: string | undefined;
  placement: Placement;
  /** Image of the proxies unless a proxy names its own (the operator's image). */
  proxyImage: string;
}

export function desiredObjects(cc: CacheCluster, inputs: DesiredInputs): KubernetesObject[] {
  const { redis, proxies } = inputs.spec;
  const out: KubernetesObject[] = [configMap(cc, redis), redisService(cc)];
  // Also with auth disabled: nodes include its auth.conf, so turning auth on is live.
  out.push(
    authSecret(cc, redis, inputs.auth, {
      exporter: inputs.exporterPassword,
      proxy: inputs.proxyUserPassword,
      replication: inputs.replicationUserPassword,
      operator: inputs.operatorUserPassword,
    }),
    authInUseSecret(cc, inputs.auth.password),
  );
  if (redis.exporter.enabled) out.push(exporterSecret(cc, inputs.exporterPassword));
  if (proxyUserWanted(redis) && inputs.proxyUserPassword !== undefined)
    out.push(proxyUserSecret(cc, inputs.proxyUserPassword));
  if (replicationUserWanted(redis) && inputs.replicationUserPassword !== undefined)
    out.push(replicationUserSecret(cc, inputs.replicationUserPassword));
  if (operatorUserWanted(redis) && inputs.operatorUserPassword !== undefined)
    out.push(operatorUserSecret(cc, inputs.operatorUserPassword));
  for (let shard = 0; shard < inputs.shards; shard++) {
    out.push(shardStatefulSet(cc, shard, redis, inputs.placement));
    out.push(shardDisruptionBudget(cc, shard));
  }
  out.push(proxyAdminSecret(cc, inputs.adminToken));
  for (const proxy of proxies) {
    out.push(
      proxyDeployment(
        cc,
        proxy,
        inputs.proxyImage,
        inputs.proxyLogin,
        redis.tls.enabled && inputs.tlsCa !== undefined
          ? { secretName: tlsSecretName(cc), ca: inputs.tlsCa }
          : undefined,
      ),
    );
    out.push(proxyService(cc, proxy));
  }
  return out;
}
