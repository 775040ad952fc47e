/**
 * The Jobs that take and restore backups (pure): the operator's own image running
 * `tiercache cluster backup|restore` against the cluster's nodes, with the cluster's password
 * and CA, the backup claim mounted at /backups, and the result written to the container's
 * termination message, where the operator reads it back (no API rights for the Job's pod).
 */
import type { V1Job, V1OwnerReference } from '@kubernetes/client-node';
import type { CacheCluster } from '../api/types.ts';
import { clusterLabels, names } from './names.ts';
import { NONROOT_UID, redisSeed, redisServiceName } from './proxy.ts';

export const BACKUP_MOUNT = '/backups';
const TLS_DIR = '/etc/redis-tls';
export const RESULT_FILE = '/dev/termination-log';

export interface BackupJobInputs {
  /** The cluster whose nodes the Job talks to. */
  cc: CacheCluster;
  jobName: string;
  owner: V1OwnerReference;
  image: string;
  /** `backup …` or `restore …` and their own options (the seed and connection options are added). */
  command: string[];
  claimName: string;
  readOnly: boolean;
  /** The cluster's TLS Secret, when its nodes serve TLS. */
  tlsSecretName: string | undefined;
}

/** Where a cluster's backups live in the claim: <claim>/<cachecluster>/<backup>/. */
export const backupRoot = (clusterName: string) => `${BACKUP_MOUNT}/${clusterName}`;

export function backupJob(o: BackupJobInputs): V1Job {
  const { cc } = o;
  const tls = o.tlsSecretName
    ? ['--tls', '--tls-ca-file', `${TLS_DIR}/ca.crt`, '--tls-server-name', redisServiceName(cc)]
    : [];
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
            {
              name: 'backups',
              persistentVolumeClaim: { claimName: o.claimName, readOnly: o.readOnly },
            },
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
              args: ['cluster', ...o.command, redisSeed(cc), ...tls, '--result-file', RESULT_FILE],
              env: [
                {
                  name: 'REDIS_PASSWORD',
                  valueFrom: {
                    secretKeyRef: { name: names.authSecret(cc.metadata.name), key: 'password' },
                  },
                },
              ],
              terminationMessagePath: RESULT_FILE,
              terminationMessagePolicy: 'FallbackToLogsOnError',
              volumeMounts: [
                { name: 'backups', mountPath: BACKUP_MOUNT, readOnly: o.readOnly },
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
