/**
 * One shard of a CacheCluster (pure): a StatefulSet of 1 + replicasPerShard Redis pods and its
 * PodDisruptionBudget, plus the headless Service all shards share for stable pod DNS names.
 *
 * Pods of a shard never share a node, nor a zone when the cluster has a zone for each of them.
 * Updates are OnDelete: the operator restarts pods itself, replicas first and a master only
 * after handing its slots to a replica.
 */
import type {
  V1Affinity,
  V1Container,
  V1PodDisruptionBudget,
  V1PodSpec,
  V1Service,
  V1StatefulSet,
  V1Volume,
  V1WeightedPodAffinityTerm,
} from '@kubernetes/client-node';
import type { CacheCluster, RedisSpec } from '../api/types.ts';
import {
  clusterLabels,
  componentSelector,
  EXPORTER_PORT,
  EXPORTER_USER,
  names,
  REDIS_PORT,
  shardLabels,
  shardSelector,
  tlsSecretName,
} from './names.ts';
import { ownedMeta } from './owner.ts';
import { AUTH_DIR, CONFIG_DIR, configHash, DATA_DIR, TLS_DIR } from './redis-config.ts';

export const BUS_PORT = REDIS_PORT + 10000;
export const CONFIG_HASH_ANNOTATION = 'tiercache.io/config-hash';
const ZONE = 'topology.kubernetes.io/zone';
const HOSTNAME = 'kubernetes.io/hostname';
const REDIS_UID = 999; // the redis user of the official images
export const PRESTOP_SECONDS = 5;

/** What the operator knows of the nodes when it builds a shard. */
export interface Placement {
  /** Distinct zones among schedulable nodes (0 when nodes carry no zone label). */
  zones: number;
}

export function redisService(cc: CacheCluster): V1Service {
  const labels = clusterLabels(cc, 'redis');
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: ownedMeta(cc, names.redisService(cc.metadata.name), labels),
    spec: {
      clusterIP: 'None',
      // Nodes find each other by name before they are ready (bootstrap, heal).
      publishNotReadyAddresses: true,
      selector: componentSelector(cc, 'redis'),
      ports: [
        { name: 'redis', port: REDIS_PORT, targetPort: REDIS_PORT },
        { name: 'bus', port: BUS_PORT, targetPort: BUS_PORT },
      ],
    },
  };
}

/** Keeps the pods of one shard apart: never on one node; never in one zone when zones allow. */
export function shardAffinity(
  cc: CacheCluster,
  shard: number,
  redis: RedisSpec,
  placement: Placement,
): V1Affinity {
  const selector = { matchLabels: shardSelector(cc, shard) };
  const podsPerShard = 1 + redis.replicasPerShard;
  const zoneTerm = { labelSelector: selector, topologyKey: ZONE };
  const required = [{ labelSelector: selector, topologyKey: HOSTNAME }];
  const preferred: V1WeightedPodAffinityTerm[] = [];
  if (placement.zones >= podsPerShard) required.push(zoneTerm);
  else if (placement.zones > 1) preferred.push({ weight: 100, podAffinityTerm: zoneTerm });
  const user = redis.affinity ?? {};
  return {
    ...user,
    podAntiAffinity: {
      requiredDuringSchedulingIgnoredDuringExecution: [
        ...required,
        ...(user.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []),
      ],
      preferredDuringSchedulingIgnoredDuringExecution: [
        ...preferred,
        ...(user.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []),
      ],
    },
  };
}

/**
 * How redis-server starts. Without persistence a restarted container finds the emptyDir's
 * nodes.conf but none of the data it describes (and, from a replica's last full sync, an old
 * dump.rdb it would load); keeping them would bring the node back as the owner of its slots
 * with nothing (or stale keys) in them, and its replica would resync that. So the node lives
 * exactly as long as its data: the directory is emptied at every start, and the node comes
 * back as a new, empty, quarantined node while its replica takes over.
 */
function serverCommand(redis: RedisSpec): { command: string[] } {
  if (redis.persistence.enabled) return { command: ['redis-server'] };
  return {
    command: ['sh', '-c', `rm -rf ${DATA_DIR}/* && exec redis-server "$@"`, 'redis-server'],
  };
}

/**
 * The metrics sidecar: redis_exporter reads its own node over localhost as the ACL user
 * EXPORTER_USER (redis-config.ts), whose password never rotates, so an environment variable
 * from its Secret stays valid for the pod's life.
 */
function exporterContainer(cc: CacheCluster, redis: RedisSpec): V1Container {
  return {
    name: 'exporter',
    image: redis.exporter.image,
    env: [
      // Over TLS its own node is reached as localhost, which no certificate names: the
      // loopback connection inside the pod is encrypted but not verified.
      ...(redis.tls.enabled
        ? [
            { name: 'REDIS_ADDR', value: `rediss://localhost:${REDIS_PORT}` },
            { name: 'REDIS_EXPORTER_SKIP_TLS_VERIFICATION', value: 'true' },
          ]
        : [{ name: 'REDIS_ADDR', value: `redis://localhost:${REDIS_PORT}` }]),
      { name: 'REDIS_USER', value: EXPORTER_USER },
      {
        name: 'REDIS_PASSWORD',
        valueFrom: {
          secretKeyRef: { name: names.exporterSecret(cc.metadata.name), key: 'password' },
        },
      },
      { name: 'REDIS_EXPORTER_WEB_LISTEN_ADDRESS', value: `:${EXPORTER_PORT}` },
    ],
    ports: [{ name: 'metrics', containerPort: EXPORTER_PORT }],
    resources: redis.exporter.resources,
    securityContext: {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    },
  };
}

function podSpec(
  cc: CacheCluster,
  shard: number,
  redis: RedisSpec,
  placement: Placement,
): V1PodSpec {
  const svc = `${names.redisService(cc.metadata.name)}.${cc.metadata.namespace}.svc`;
  const volumes: V1Volume[] = [
    { name: 'config', configMap: { name: names.redisConfig(cc.metadata.name) } },
  ];
  const mounts = [
    { name: 'config', mountPath: CONFIG_DIR, readOnly: true },
    { name: 'data', mountPath: DATA_DIR },
  ];
  // Also with auth disabled (its auth.conf says nopass), so turning auth on is no restart.
  volumes.push({
    name: 'auth',
    // All of it: during a rotation the readiness probe may need `next` or `retiring` too.
    secret: { secretName: names.authSecret(cc.metadata.name), defaultMode: 0o400 },
  });
  mounts.push({ name: 'auth', mountPath: AUTH_DIR, readOnly: true });
  if (redis.tls.enabled) {
    volumes.push({
      name: 'tls',
      secret: { secretName: tlsSecretName(cc), defaultMode: 0o400 },
    });
    mounts.push({ name: 'tls', mountPath: TLS_DIR, readOnly: true });
  }
  if (!redis.persistence.enabled) volumes.push({ name: 'data', emptyDir: {} });
  // All of the cluster's Redis pods spread over nodes and zones where the scheduler can (a
  // pod re-created after a drain lands on the emptied node, so masters can move there).
  const spread = [HOSTNAME, ZONE].map((topologyKey) => ({
    maxSkew: 1,
    topologyKey,
    whenUnsatisfiable: 'ScheduleAnyway',
    labelSelector: { matchLabels: componentSelector(cc, 'redis') },
  }));
  return {
    affinity: shardAffinity(cc, shard, redis, placement),
    topologySpreadConstraints: spread,
    ...(redis.tolerations ? { tolerations: redis.tolerations } : {}),
    ...(redis.nodeSelector ? { nodeSelector: redis.nodeSelector } : {}),
    terminationGracePeriodSeconds: 30,
    enableServiceLinks: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: REDIS_UID,
      runAsGroup: REDIS_UID,
      fsGroup: REDIS_UID,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    containers: [
      {
        name: 'redis',
        image: redis.image,
        ...serverCommand(redis),
        args: [
          `${CONFIG_DIR}/redis.conf`,
          // Nodes gossip the address they are reached at: the pod's IP, and its DNS name.
          '--cluster-announce-ip',
          '$(POD_IP)',
          '--cluster-announce-hostname',
          `$(POD_NAME).${svc}`,
        ],
        env: [
          { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
          { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        ],
        ports: [
          { name: 'redis', containerPort: REDIS_PORT },
          { name: 'bus', containerPort: BUS_PORT },
        ],
        // Ready once a cluster member and, as a replica, in sync (redis-config.ts READY_SCRIPT).
        readinessProbe: {
          exec: { command: ['sh', `${CONFIG_DIR}/ready.sh`] },
          periodSeconds: 2,
          timeoutSeconds: 2,
          failureThreshold: 1,
        },
        // Time for the operator to hand a master's slots to its replica before SIGTERM: a
        // planned disruption then pauses writes for a coordinated CLUSTER FAILOVER only.
        lifecycle: { preStop: { sleep: { seconds: PRESTOP_SECONDS } } },
        livenessProbe: {
          tcpSocket: { port: REDIS_PORT },
          initialDelaySeconds: 15,
          periodSeconds: 10,
          failureThreshold: 6,
        },
        ...(redis.resources ? { resources: redis.resources } : {}),
        volumeMounts: mounts,
        securityContext: {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        },
      },
      ...(redis.exporter.enabled ? [exporterContainer(cc, redis)] : []),
    ],
    volumes,
  };
}

export function shardStatefulSet(
  cc: CacheCluster,
  shard: number,
  redis: RedisSpec,
  placement: Placement,
): V1StatefulSet {
  const selector = shardSelector(cc, shard);
  const labels = shardLabels(cc, shard);
  const p = redis.persistence;
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: ownedMeta(cc, names.shard(cc.metadata.name, shard), labels),
    spec: {
      serviceName: names.redisService(cc.metadata.name),
      replicas: 1 + redis.replicasPerShard,
      podManagementPolicy: 'Parallel',
      updateStrategy: { type: 'OnDelete' },
      selector: { matchLabels: selector },
      template: {
        metadata: { labels, annotations: { [CONFIG_HASH_ANNOTATION]: configHash(redis) } },
        spec: podSpec(cc, shard, redis, placement),
      },
      ...(p.enabled
        ? {
            volumeClaimTemplates: [
              {
                metadata: { name: 'data', labels },
                spec: {
                  accessModes: ['ReadWriteOnce'],
                  ...(p.storageClassName ? { storageClassName: p.storageClassName } : {}),
                  resources: { requests: { storage: p.size } },
                },
              },
            ],
            // A removed shard was drained first, and a deleted CacheCluster takes its data along.
            persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Delete', whenScaled: 'Delete' },
          }
        : {}),
    },
  };
}

export function shardDisruptionBudget(cc: CacheCluster, shard: number): V1PodDisruptionBudget {
  return {
    apiVersion: 'policy/v1',
    kind: 'PodDisruptionBudget',
    metadata: ownedMeta(cc, names.shard(cc.metadata.name, shard), shardLabels(cc, shard)),
    spec: { maxUnavailable: 1, selector: { matchLabels: shardSelector(cc, shard) } },
  };
}
