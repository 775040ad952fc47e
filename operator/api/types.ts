/**
 * The CacheCluster resource (tiercache.io/v1alpha1) as TypeScript types. Each field reads as
 * its description in the CRD (crds/cacheclusters.tiercache.io.yaml), which also holds the
 * defaults; `withDefaults` applies them from there.
 */
import type {
  V1Affinity,
  V1ObjectMeta,
  V1ResourceRequirements,
  V1Toleration,
} from '@kubernetes/client-node';
import { applyDefaults, cacheClusterSpecSchema } from './defaults.ts';

export const GROUP = 'tiercache.io';
export const VERSION = 'v1alpha1';
export const PLURAL = 'cacheclusters';
export const KIND = 'CacheCluster';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** maxmemory-policy once maxMemory is reached. */
export type EvictionPolicy =
  | 'allkeys-lru'
  | 'allkeys-lfu'
  | 'allkeys-random'
  | 'volatile-lru'
  | 'volatile-lfu'
  | 'volatile-random'
  | 'volatile-ttl'
  | 'noeviction';

/** Keep data across pod restarts on a PersistentVolumeClaim per pod. */
export interface PersistenceSpec {
  /** Give every Redis pod a volume (fixed at creation). Default false. */
  enabled: boolean;
  /** Size of each pod's volume; it may grow, never shrink. Default 1Gi. */
  size: string;
  /** StorageClass of the volumes ("" for the cluster default). */
  storageClassName: string;
  /** Write an append-only file (appendonly yes) as well as snapshots. Default true. */
  appendOnly: boolean;
  /** An RDB snapshot this often when anything changed (save <s> 1); 0: none. Default 900. */
  snapshotEverySeconds: number;
  /** appendfsync of the append-only file. Default everysec. */
  appendFsync: 'everysec' | 'always' | 'no';
}

/** Password protection of Redis (requirepass and masterauth). */
export interface AuthSpec {
  /** Require a password; one is generated into a Secret unless secretName is given. Default true. */
  enabled: boolean;
  /** An existing Secret whose key "password" holds the password. */
  secretName?: string;
  /** Named ACL users instead of `default` for some clients. */
  users: AuthUsersSpec;
  /**
   * `password`: `default` signs in with the password (the default). `disabled`: nobody may sign
   * in as `default`; the operator, replication, the proxies, the readiness probe
   * (`tiercache-probe`) and the metrics sidecar each sign in as a user of their own. Needs
   * every one of `users`. Changed live, once every client is on its own user.
   */
  defaultUser: 'password' | 'disabled';
}

/** Which clients log in as ACL users of their own, each with its own generated Secret. */
export interface AuthUsersSpec {
  /**
   * The proxies log in as `tiercache-proxy`, which may touch only their keys (`tc:*`, `tc-*`)
   * and their invalidation channel, and run no administrative command. Default false.
   */
  proxies: boolean;
  /**
   * Replicas sign in to their masters as `tiercache-replication`, which may only replicate
   * (PSYNC, SYNC, REPLCONF, PING): a rotation of the default password no longer touches
   * masterauth, and the default user's password is not what replication depends on. Default false.
   */
  replication: boolean;
  /**
   * The operator signs in as `tiercache-operator`, which administers the cluster (every key,
   * CLUSTER, CONFIG, ACL, MIGRATE) but may not FLUSHALL, FLUSHDB, SHUTDOWN, DEBUG or MONITOR.
   * Default false.
   */
  operator: boolean;
}

/** The metrics sidecar of every Redis pod. */
export interface ExporterSpec {
  /** Add oliver006/redis_exporter beside every Redis node (port 9121). Default false. */
  enabled: boolean;
  /** Default oliver006/redis_exporter:v1.74.0. */
  image: string;
  /** Compute resources of each exporter container. Default requests 10m/32Mi, limit 64Mi. */
  resources: V1ResourceRequirements;
}

/** TLS for every connection to and between the Redis nodes. */
export interface TlsSpec {
  /**
   * Serve TLS only (clients, replication and the cluster bus) on the Redis port. Fixed at
   * creation: every client would have to switch at the same moment. Default false.
   */
  enabled: boolean;
  /**
   * A Secret with `tls.crt`, `tls.key` and `ca.crt` (as cert-manager writes them) whose
   * certificate names `<cc>-redis.<ns>.svc` and `*.<cc>-redis.<ns>.svc`. A renewed
   * certificate is loaded by every node without a restart. With issuerRef: the Secret
   * cert-manager writes (default `<cc>-redis-tls`).
   */
  secretName?: string;
  /** Have cert-manager issue the certificate (a Certificate `<cc>-redis-tls` from this issuer). */
  issuerRef?: { name: string; kind: string; group: string };
}

/** The Redis Cluster. */
export interface RedisSpec {
  /** Redis image (any Redis 7 or later, or Valkey). Default redis:7.2. */
  image: string;
  /**
   * Number of masters; the 16384 slots are spread evenly over them. Scaling out adds shards
   * and moves slots (with their keys) onto them; scaling in drains a shard before deleting it.
   * Default 3.
   */
  shards: number;
  /** Replicas of each master (0 means no failover for that shard). Default 1. */
  replicasPerShard: number;
  /** maxmemory of each Redis node, as a Kubernetes quantity (e.g. 256Mi, 1Gi). Default 256Mi. */
  maxMemory: string;
  /** Default allkeys-lru. */
  evictionPolicy: EvictionPolicy;
  /**
   * cluster-node-timeout in milliseconds: how long a node may be unreachable before Redis
   * fails it over. Default 5000.
   */
  nodeTimeoutMs: number;
  persistence: PersistenceSpec;
  auth: AuthSpec;
  tls: TlsSpec;
  exporter: ExporterSpec;
  /** Compute resources of each Redis container. */
  resources?: V1ResourceRequirements;
  /**
   * Extra affinity for Redis pods; the operator always adds anti-affinity so a master and its
   * replicas never share a node (or a zone).
   */
  affinity?: V1Affinity;
  /** Tolerations of Redis pods. */
  tolerations?: V1Toleration[];
  /** Node labels Redis pods must run on. */
  nodeSelector?: Record<string, string>;
}

/** The API a proxy caches. */
export type Upstream = 'tmdb' | 'crypto';

/** A regional caching proxy (one Deployment and Service). */
export interface ProxySpec {
  /** Name of the proxy (its Deployment is <cachecluster>-proxy-<name>). */
  name: string;
  upstream: Upstream;
  /**
   * Region of this proxy: sets REGION and, unless nodeSelector is given, the node selector
   * topology.kubernetes.io/region=<region>.
   */
  region: string;
  /** Proxy pods. Default 2. */
  replicas: number;
  /**
   * Where its L2 looks go (REDIS_READ_FROM): the masters, or the nearest copy of each slot (a
   * replica in its region). Default master.
   */
  readFrom: 'master' | 'nearest';
  /** Proxy image (default the operator's own image). */
  image?: string;
  /**
   * Secret key holding the upstream's API key (TMDB_API_KEY or CRYPTO_API_KEY), in the
   * CacheCluster's namespace. Without it the proxy serves labelled demo data.
   */
  apiKeySecretRef?: { name: string; key: string };
  /**
   * Extra proxy settings (TTL overrides, LOG_LEVEL, …). The operator owns REGION, REDIS_* and
   * the API key variables.
   */
  env?: Record<string, string>;
  /** Node labels the proxy pods must run on (replaces the region selector). */
  nodeSelector?: Record<string, string>;
  /** Compute resources of each proxy container. */
  resources?: V1ResourceRequirements;
}

/** Backups of the cluster: where they go, and an optional schedule. */
export interface BackupSpec {
  /** The claim holding the backups (default <cachecluster>-backups, made when missing). */
  claimName?: string;
  size: string;
  storageClassName: string;
  /** Cron (5 fields, or 6 with seconds first); empty for on-demand backups only. */
  schedule: string;
  /** Scheduled backups kept. */
  keep: number;
  /** Backups in an S3-compatible bucket instead of the claim. */
  s3?: S3BackupSpec;
}

export interface S3BackupSpec {
  bucket: string;
  prefix?: string;
  endpoint?: string;
  region?: string;
  /** A Secret with the keys accessKeyId and secretAccessKey. */
  credentialsSecret: string;
}

/** Fill a new cluster from a CacheClusterBackup once it is formed. */
export interface RestoreSpec {
  backup: string;
}

/** The desired Redis Cluster and proxies. */
export interface CacheClusterSpec {
  redis: RedisSpec;
  backup?: BackupSpec;
  restore?: RestoreSpec;
  /** Regional caching proxies (one Deployment and Service each). */
  proxies: ProxySpec[];
}

export interface Condition {
  type: 'Ready' | 'Progressing' | 'Degraded';
  status: 'True' | 'False' | 'Unknown';
  observedGeneration?: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

/** One shard as observed: its master, replicas, slots and keys. */
export interface ShardStatus {
  /** The shard's StatefulSet (<cachecluster>-shard-<i>). */
  name: string;
  /** Pod serving as master. */
  master: string;
  /** Pods replicating the master. */
  replicas: string[];
  /** Slot ranges the master serves, e.g. "0-5460". */
  slots: string;
  /** Keys on the master (refreshed at most once a minute). */
  keys: number;
}

/** Slot migration in progress, if any. */
export interface MigrationStatus {
  state: 'Idle' | 'ScalingOut' | 'Rebalancing' | 'Draining';
  /** The shard being drained. */
  fromShard?: number;
  /** The shard being added. */
  toShard?: number;
  slotsDone?: number;
  slotsTotal?: number;
}

/** What the operator observed. */
export interface CacheClusterStatus {
  /** The spec generation this status describes. */
  observedGeneration?: number;
  /** Shards whose master serves its slots (the scale subresource's status). */
  readyShards?: number;
  /** Ready, Progressing and Degraded (metav1.Condition). */
  conditions?: Condition[];
  shards?: ShardStatus[];
  /** The Redis pods' DNS addresses, as the proxies are given them. */
  nodes?: string[];
  migration?: MigrationStatus;
  /** Ready pods of each regional proxy. */
  proxies?: { name: string; region: string; readyReplicas: number }[];
  backup?: BackupStatus;
  restore?: RestoreStatus;
}

export type JobPhase = 'Pending' | 'Running' | 'Completed' | 'Failed';

export interface BackupStatus {
  lastScheduleTime?: string;
  lastBackup?: string;
  message?: string;
  /** The backup of this cluster that finished last, scheduled or not. */
  lastFinished?: {
    name: string;
    phase: JobPhase;
    completionTime?: string;
    keys?: number;
    bytes?: number;
  };
}

export interface RestoreStatus {
  backup: string;
  phase: JobPhase;
  keysTotal?: number;
  keysRestored?: number;
  keysExisting?: number;
  keysExpired?: number;
  startTime?: string;
  completionTime?: string;
  message?: string;
}

export const BACKUP_PLURAL = 'cacheclusterbackups';
export const BACKUP_KIND = 'CacheClusterBackup';

/** One backup of a CacheCluster (crds/cacheclusterbackups.tiercache.io.yaml). */
export interface CacheClusterBackup {
  apiVersion: typeof API_VERSION;
  kind: typeof BACKUP_KIND;
  metadata: V1ObjectMeta & { name: string; namespace: string };
  spec: { cacheCluster: string };
  status?: {
    phase?: JobPhase;
    scheduled?: boolean;
    claimName?: string;
    s3?: S3BackupSpec;
    path?: string;
    startTime?: string;
    completionTime?: string;
    keys?: number;
    bytes?: number;
    shards?: {
      file: string;
      source: string;
      role: string;
      slots: string;
      keys: number;
      bytes: number;
    }[];
    message?: string;
  };
}

export interface CacheCluster {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: V1ObjectMeta & { name: string; namespace: string };
  spec: CacheClusterSpec;
  status?: CacheClusterStatus;
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** The spec with every default of the CRD's schema filled in (defaults.ts: the CRD is their one source). */
export function withDefaults(spec: DeepPartial<CacheClusterSpec> | undefined): CacheClusterSpec {
  const filled = applyDefaults(cacheClusterSpecSchema(), spec ?? {}) as CacheClusterSpec;
  return { ...filled, proxies: filled.proxies ?? [] };
}
