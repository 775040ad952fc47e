/**
 * A local-directory volume provisioner, as kind's local-path provisioner does it: every claim
 * of the `local-dir` StorageClass gets a PersistentVolume whose hostPath is that claim's own
 * directory under .local/cluster/claims, which outlives the pods that mount it. It also
 * expands claims (the StorageClass allows it), as a CSI resizer would: a directory has no
 * size, so growing is recording the new capacity on the volume and the claim.
 */
import { join } from 'node:path';
import {
  type CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type V1PersistentVolumeClaim,
} from '@kubernetes/client-node';
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
allowVolumeExpansion: true
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

/** A bound claim of this class asking for more than it has: the volume and claim grow to it. */
export async function expand(
  core: CoreV1Api,
  claim: V1PersistentVolumeClaim,
  log: (m: string) => void,
): Promise<void> {
  if (claim.status?.phase !== 'Bound' || !claim.spec?.volumeName) return;
  if ((claim.spec.storageClassName ?? '') !== STORAGE_CLASS) return;
  const wanted = claim.spec.resources?.requests?.storage;
  const has = claim.status.capacity?.storage;
  if (!wanted || wanted === has) return;
  const ns = claim.metadata!.namespace!;
  const name = claim.metadata!.name!;
  try {
    await core.patchPersistentVolume(
      { name: claim.spec.volumeName, body: { spec: { capacity: { storage: wanted } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    await core.patchNamespacedPersistentVolumeClaimStatus(
      { name, namespace: ns, body: { status: { capacity: { storage: wanted } } } },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    );
    log(`expanded ${ns}/${name} to ${wanted}`);
  } catch (err) {
    log(`expanding ${ns}/${name} failed: ${(err as Error).message}`);
  }
}
