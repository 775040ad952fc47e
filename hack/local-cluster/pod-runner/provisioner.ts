/**
 * A local-directory volume provisioner, as kind's local-path provisioner does it: every claim
 * of the `local-dir` StorageClass gets a PersistentVolume whose hostPath is that claim's own
 * directory under .local/cluster/claims, which outlives the pods that mount it.
 */
import { join } from 'node:path';
import type { CoreV1Api, V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { paths } from '../layout.ts';

export const STORAGE_CLASS = 'local-dir';
export const PROVISIONER = 'tiercache.io/local-dir';

export function storageClassManifest(): string {
  return `apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: ${STORAGE_CLASS}
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: ${PROVISIONER}
reclaimPolicy: Delete
volumeBindingMode: Immediate
`;
}

export async function provision(
  core: CoreV1Api,
  claim: V1PersistentVolumeClaim,
  log: (m: string) => void,
): Promise<void> {
  if (claim.status?.phase !== 'Pending' || claim.spec?.volumeName) return;
  if ((claim.spec?.storageClassName ?? '') !== STORAGE_CLASS) return;
  const ns = claim.metadata!.namespace!;
  const name = claim.metadata!.name!;
  const pvName = `pvc-${claim.metadata!.uid}`;
  try {
    await core.createPersistentVolume({
      body: {
        metadata: { name: pvName, annotations: { 'pv.kubernetes.io/provisioned-by': PROVISIONER } },
        spec: {
          capacity: { storage: claim.spec?.resources?.requests?.storage ?? '1Gi' },
          accessModes: claim.spec?.accessModes ?? ['ReadWriteOnce'],
          persistentVolumeReclaimPolicy: 'Delete',
          storageClassName: STORAGE_CLASS,
          hostPath: { path: join(paths.claims, ns, name), type: 'DirectoryOrCreate' },
          claimRef: {
            apiVersion: 'v1',
            kind: 'PersistentVolumeClaim',
            namespace: ns,
            name,
            uid: claim.metadata!.uid,
          },
        },
      },
    });
    log(`provisioned ${pvName} for ${ns}/${name}`);
  } catch (err) {
    if ((err as { code?: number }).code !== 409)
      log(`provisioning ${ns}/${name} failed: ${(err as Error).message}`);
  }
}
