/**
 * Names and labels of everything a CacheCluster owns (pure). Every object carries the
 * recommended app.kubernetes.io labels plus tiercache.io/cluster, so one selector finds them.
 */
import type { CacheCluster } from '../api/types.ts';

export const REDIS_PORT = 6379;
export const PROXY_PORT = 6635;
export const EXPORTER_PORT = 9121;
/** The ACL user the metrics sidecar signs in as (it may only read metrics). */
export const EXPORTER_USER = 'tiercache-exporter';
/** The ACL user the proxies sign in as with spec.redis.auth.users.proxies (their keys only). */
export const PROXY_USER = 'tiercache-proxy';
/** The ACL user the operator signs in as with spec.redis.auth.users.operator (cluster administration). */
export const OPERATOR_USER = 'tiercache-operator';
/** The ACL user replicas sign in to their masters as with spec.redis.auth.users.replication. */
export const REPLICATION_USER = 'tiercache-replication';
/**
 * The ACL user the readiness probe signs in as once `default` is disabled: PING, INFO and
 * CLUSTER INFO only, with default's passwords (the probe reads them from the auth Secret).
 */
export const PROBE_USER = 'tiercache-probe';
export const FIELD_MANAGER = 'tiercache-operator';

export const LABEL_CLUSTER = 'tiercache.io/cluster';
export const LABEL_SHARD = 'tiercache.io/shard';
export const LABEL_PROXY = 'tiercache.io/proxy';
export const LABEL_COMPONENT = 'app.kubernetes.io/component';
/** On a CacheClusterBackup made by the cluster's schedule (retention deletes the oldest). */
export const LABEL_SCHEDULED = 'tiercache.io/scheduled';

export const names = {
  /** Headless Service governing every Redis pod: <pod>.<cc>-redis.<ns>.svc */
  redisService: (cc: string) => `${cc}-redis`,
  redisConfig: (cc: string) => `${cc}-redis-config`,
  /** Generated password Secret (keys `password` and `auth.conf`). */
  authSecret: (cc: string) => `${cc}-redis-auth`,
  /** The password the nodes accept now, for the operator alone (outlives a deleted auth Secret). */
  authInUseSecret: (cc: string) => `${cc}-redis-auth-in-use`,
  /** The metrics sidecar's own password (key `password`), generated once; it never rotates. */
  exporterSecret: (cc: string) => `${cc}-redis-exporter`,
  /** The proxies' ACL user's password (key `password`), generated once. */
  proxyUserSecret: (cc: string) => `${cc}-redis-proxy`,
  /** The operator's ACL user's password (key `password`), generated once, for the operator alone. */
  operatorUserSecret: (cc: string) => `${cc}-redis-operator`,
  /** The replication ACL user's password (key `password`), generated once, for the operator alone. */
  replicationUserSecret: (cc: string) => `${cc}-redis-replication`,
  shard: (cc: string, shard: number) => `${cc}-shard-${shard}`,
  pod: (cc: string, shard: number, ordinal: number) => `${cc}-shard-${shard}-${ordinal}`,
  proxy: (cc: string, proxy: string) => `${cc}-proxy-${proxy}`,
  /** The cert-manager Certificate made for tls.issuerRef, and its Secret unless tls.secretName names one. */
  tlsCertificate: (cc: string) => `${cc}-redis-tls`,
  /** The claim backups go to unless spec.backup.claimName names one. */
  backupClaim: (cc: string) => `${cc}-backups`,
  /** The Job taking a CacheClusterBackup. */
  backupJob: (backup: string) => `${backup}-backup`,
  /** The Job filling a CacheCluster from spec.restore. */
  restoreJob: (cc: string) => `${cc}-restore`,
};

/** The Secret holding the nodes' certificate: tls.secretName, else the one cert-manager writes. */
export function tlsSecretName(cc: CacheCluster): string {
  return cc.spec.redis.tls?.secretName ?? names.tlsCertificate(cc.metadata.name);
}

/** DNS name clients use for one Redis pod. */
export function podAddress(cc: CacheCluster, shard: number, ordinal: number): string {
  const { name, namespace } = cc.metadata;
  return `${names.pod(name, shard, ordinal)}.${names.redisService(name)}.${namespace}.svc:${REDIS_PORT}`;
}

export function clusterLabels(cc: CacheCluster, component: string): Record<string, string> {
  return {
    'app.kubernetes.io/name': 'tiercache',
    'app.kubernetes.io/instance': cc.metadata.name,
    'app.kubernetes.io/managed-by': FIELD_MANAGER,
    [LABEL_COMPONENT]: component,
    [LABEL_CLUSTER]: cc.metadata.name,
  };
}

/** Labels selecting a CacheCluster's objects of one component (`redis` or `proxy`). */
export function componentSelector(cc: CacheCluster, component: string): Record<string, string> {
  return { [LABEL_CLUSTER]: cc.metadata.name, [LABEL_COMPONENT]: component };
}

/** The same selector as an API labelSelector string. */
export function labelSelector(labels: Record<string, string>): string {
  return Object.entries(labels)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/** Labels selecting the Redis pods of one shard (stable: part of the StatefulSet selector). */
export function shardSelector(cc: CacheCluster, shard: number): Record<string, string> {
  return { ...componentSelector(cc, 'redis'), [LABEL_SHARD]: String(shard) };
}

export function proxySelector(cc: CacheCluster, proxy: string): Record<string, string> {
  return { ...componentSelector(cc, 'proxy'), [LABEL_PROXY]: proxy };
}

/** Every label of a shard's objects (StatefulSet, its pods and claims, PDB). */
export function shardLabels(cc: CacheCluster, shard: number): Record<string, string> {
  return { ...clusterLabels(cc, 'redis'), [LABEL_SHARD]: String(shard) };
}

/** Every label of a proxy's objects (Deployment, its pods, Service). */
export function proxyLabels(cc: CacheCluster, proxy: string): Record<string, string> {
  return { ...clusterLabels(cc, 'proxy'), [LABEL_PROXY]: proxy };
}
