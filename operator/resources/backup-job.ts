/**
 * The Jobs that take and restore backups (pure): the operator's own image running
 * `tiercache cluster backup|restore` against the cluster's nodes, signed in as the operator's
 * user or default (signIn), with the CA, the backups' place — the claim mounted at /backups, or a bucket with its credentials
 * and a scratch directory — and the result written to the container's termination message,
 * where the operator reads it back (no API rights for the Job's pod).
 */
import type {
  V1EnvVar,
  V1Job,
  V1OwnerReference,
  V1Volume,
  V1VolumeMount,
} from '@kubernetes/client-node';
import { type CacheCluster, type S3BackupSpec, withDefaults } from '../api/types.ts';
import { clusterLabels, names, OPERATOR_USER } from './names.ts';
import { NONROOT_UID, redisSeed, redisServiceName } from './proxy.ts';
import { operatorUserWanted } from './redis-config.ts';

export const BACKUP_MOUNT = '/backups';
const TLS_DIR = '/etc/redis-tls';
export const RESULT_FILE = '/dev/termination-log';

/** Where a cluster's backups are: a claim, or a bucket. */
export type BackupPlace = { claimName: string } | { s3: S3BackupSpec };

export interface BackupJobInputs {
  /** The cluster whose nodes the Job talks to. */
  cc: CacheCluster;
  jobName: string;
  owner: V1OwnerReference;
  image: string;
  /** `backup …` or `restore …` and their own options (the place, seed and connection options are added). */
  command: string[];
  place: BackupPlace;
  /** The cluster whose backups these are (its name is their folder). */
  backupsOf: string;
  /** A restore only reads. */
  readOnly: boolean;
  /** The cluster's TLS Secret, when its nodes serve TLS. */
  tlsSecretName: string | undefined;
}

/** The CLI's options naming the place: <claim>/<cluster>/ or <prefix>/<cluster>/ in the bucket. */
export function placeArgs(place: BackupPlace, backupsOf: string): string[] {
  if ('claimName' in place) return ['--dir', `${BACKUP_MOUNT}/${backupsOf}`];
  const { bucket, prefix, endpoint, region } = place.s3;
  return [
    '--s3-bucket',
    bucket,
    '--s3-prefix',
    [prefix?.replace(/\/+$/, ''), backupsOf].filter(Boolean).join('/'),
    ...(endpoint ? ['--s3-endpoint', endpoint] : []),
    ...(region ? ['--s3-region', region] : []),
  ];
}

/** The volumes, mounts and environment a place needs. */
function placeMounts(
  place: BackupPlace,
  readOnly: boolean,
): { volumes: V1Volume[]; mounts: V1VolumeMount[]; env: V1EnvVar[] } {
  if ('claimName' in place)
    return {
      volumes: [
        { name: 'backups', persistentVolumeClaim: { claimName: place.claimName, readOnly } },
      ],
      mounts: [{ name: 'backups', mountPath: BACKUP_MOUNT, readOnly }],
      env: [],
    };
  // The root is read-only: snapshots wait in a scratch directory before they are uploaded.
  const secret = place.s3.credentialsSecret;
  return {
    volumes: [{ name: 'scratch', emptyDir: {} }],
    mounts: [{ name: 'scratch', mountPath: '/tmp' }],
    env: [
      {
        name: 'AWS_ACCESS_KEY_ID',
        valueFrom: { secretKeyRef: { name: secret, key: 'accessKeyId' } },
      },
      {
        name: 'AWS_SECRET_ACCESS_KEY',
        valueFrom: { secretKeyRef: { name: secret, key: 'secretAccessKey' } },
      },
    ],
  };
}

/**
 * How the Job signs in to the nodes: as the operator's own user when the cluster has it (its
 * backups and restores are cluster administration), else as default with the cluster's password.
 */
function signIn(cc: CacheCluster): V1EnvVar[] {
  const own = operatorUserWanted(withDefaults(cc.spec).redis);
  const password: V1EnvVar = {
    name: 'REDIS_PASSWORD',
    valueFrom: {
      secretKeyRef: {
        name: own ? names.operatorUserSecret(cc.metadata.name) : names.authSecret(cc.metadata.name),
        key: 'password',
      },
    },
  };
  return own ? [{ name: 'REDIS_USERNAME', value: OPERATOR_USER }, password] : [password];
}

export function backupJob(o: BackupJobInputs): V1Job {
  const { cc } = o;
  const tls = o.tlsSecretName
    ? ['--tls', '--tls-ca-file', `${TLS_DIR}/ca.crt`, '--tls-server-name', redisServiceName(cc)]
    : [];
  const place = placeMounts(o.place, o.readOnly);
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: o.jobName,
      namespace: cc.metadata.namespace,
      labels: clusterLabels(cc, 'backup'),
      ownerReferences: [o.owner],
    },
    spec: {
      // A failed run is reported, not retried behind the user's back: a new backup is cheap.
      backoffLimit: 0,
      activeDeadlineSeconds: 3600,
      template: {
        metadata: { labels: clusterLabels(cc, 'backup') },
        spec: {
          restartPolicy: 'Never',
          automountServiceAccountToken: false,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: NONROOT_UID,
            runAsGroup: NONROOT_UID,
            fsGroup: NONROOT_UID,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          volumes: [
            ...place.volumes,
            ...(o.tlsSecretName
              ? [
                  {
                    name: 'redis-ca',
                    secret: {
                      secretName: o.tlsSecretName,
                      items: [{ key: 'ca.crt', path: 'ca.crt' }],
                    },
                  },
                ]
              : []),
          ],
          containers: [
            {
              name: 'tiercache',
              image: o.image,
              args: [
                'cluster',
                ...o.command,
                ...placeArgs(o.place, o.backupsOf),
                redisSeed(cc),
                ...tls,
                '--result-file',
                RESULT_FILE,
              ],
              env: [...signIn(cc), ...place.env],
              terminationMessagePath: RESULT_FILE,
              terminationMessagePolicy: 'FallbackToLogsOnError',
              volumeMounts: [
                ...place.mounts,
                ...(o.tlsSecretName
                  ? [{ name: 'redis-ca', mountPath: TLS_DIR, readOnly: true }]
                  : []),
              ],
              resources: { requests: { cpu: '100m', memory: '128Mi' } },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
            },
          ],
        },
      },
    },
  };
}
