/**
 * The CacheCluster resource (tiercache.io/v1alpha1) as TypeScript types, and the defaults the
 * CRD's schema gives (applied here too, so the operator never depends on a field the API
 * server may not have filled, e.g. an object stored before a default was added).
 */
import type {
  V1Affinity,
  V1ObjectMeta,
  V1ResourceRequirements,
  V1Toleration,
} from '@kubernetes/client-node';

export const GROUP = 'tiercache.io';
export const VERSION = 'v1alpha1';
export const PLURAL = 'cacheclusters';
export const KIND = 'CacheCluster';
export const API_VERSION = `${GROUP}/${VERSION}`;

export type EvictionPolicy =
  | 'allkeys-lru'
  | 'allkeys-lfu'
  | 'allkeys-random'
  | 'volatile-lru'
  | 'volatile-lfu'
  | 'volatile-random'
  | 'volatile-ttl'
  | 'noeviction';

export interface PersistenceSpec {
  enabled: boolean;
  size: string;
  storageClassName: string;
  appendOnly: boolean;
}

export interface AuthSpec {
  enabled: boolean;
  secretName?: string;
}

export interface RedisSpec {
  image: string;
  shards: number;
  replicasPerShard: number;
  maxMemory: string;
  evictionPolicy: EvictionPolicy;
  nodeTimeoutMs: number;
  persistence: PersistenceSpec;
  auth: AuthSpec;
  resources?: V1ResourceRequirements;
  affinity?: V1Affinity;
  tolerations?: V1Toleration[];
  nodeSelector?: Record<string, string>;
}

export type Upstream = 'tmdb' | 'crypto';

export interface ProxySpec {
  name: string;
  upstream: Upstream;
  region: string;
  replicas: number;
  image?: string;
  apiKeySecretRef?: { name: string; key: string };
  env?: Record<string, string>;
  nodeSelector?: Record<string, string>;
  resources?: V1ResourceRequirements;
}

export interface CacheClusterSpec {
  redis: RedisSpec;
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

export interface ShardStatus {
  name: string;
  master: string;
  replicas: string[];
  slots: string;
  keys: number;
}

export interface MigrationStatus {
  state: 'Idle' | 'ScalingOut' | 'Rebalancing' | 'Draining';
  fromShard?: number;
  toShard?: number;
  slotsDone?: number;
  slotsTotal?: number;
}

export interface CacheClusterStatus {
  observedGeneration?: number;
  readyShards?: number;
  conditions?: Condition[];
  shards?: ShardStatus[];
  nodes?: string[];
  migration?: MigrationStatus;
  proxies?: { name: string; region: string; readyReplicas: number }[];
}

export interface CacheCluster {
  apiVersion: typeof API_VERSION;
  kind: typeof KIND;
  metadata: V1ObjectMeta & { name: string; namespace: string };
  spec: CacheClusterSpec;
  status?: CacheClusterStatus;
}

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** The spec with every default of the CRD's schema filled in. */
export function withDefaults(spec: DeepPartial<CacheClusterSpec> | undefined): CacheClusterSpec {
  const r = spec?.redis ?? {};
  return {
    redis: {
      ...(r as Partial<RedisSpec>),
      image: r.image ?? 'redis:7.2',
      shards: r.shards ?? 3,
      replicasPerShard: r.replicasPerShard ?? 1,
      maxMemory: r.maxMemory ?? '256Mi',
      evictionPolicy: r.evictionPolicy ?? 'allkeys-lru',
      nodeTimeoutMs: r.nodeTimeoutMs ?? 5000,
      persistence: {
        enabled: r.persistence?.enabled ?? false,
        size: r.persistence?.size ?? '1Gi',
        storageClassName: r.persistence?.storageClassName ?? '',
        appendOnly: r.persistence?.appendOnly ?? true,
      },
      auth: {
        enabled: r.auth?.enabled ?? true,
        ...(r.auth?.secretName ? { secretName: r.auth.secretName } : {}),
      },
    },
    proxies: (spec?.proxies ?? []).map((p) => ({
      ...(p as ProxySpec),
      replicas: p?.replicas ?? 2,
    })),
  };
}
