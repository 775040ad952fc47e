/**
 * The cert-manager Certificate for spec.redis.tls.issuerRef (pure): the names every client
 * checks — the headless Service and every pod under it, short and fully qualified — for server
 * and client authentication (the nodes dial each other with the same certificate), into the
 * Secret the Redis pods mount. The key is rotated with every renewal.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { CacheCluster } from '../api/types.ts';
import { clusterLabels, names, tlsSecretName } from './names.ts';
import { ownedMeta } from './owner.ts';

export const CERTIFICATE_API = { group: 'cert-manager.io', version: 'v1', plural: 'certificates' };

export function redisCertificate(
  cc: CacheCluster,
  issuerRef: { name: string; kind: string; group: string },
  clusterDomain = 'cluster.local',
): KubernetesObject & { spec: Record<string, unknown> } {
  const service = `${names.redisService(cc.metadata.name)}.${cc.metadata.namespace}.svc`;
  return {
    apiVersion: `${CERTIFICATE_API.group}/${CERTIFICATE_API.version}`,
    kind: 'Certificate',
    metadata: ownedMeta(cc, names.tlsCertificate(cc.metadata.name), clusterLabels(cc, 'redis')),
    spec: {
      secretName: tlsSecretName(cc),
      commonName: service,
      dnsNames: [
        service,
        `*.${service}`,
        `${service}.${clusterDomain}`,
        `*.${service}.${clusterDomain}`,
      ],
      usages: ['server auth', 'client auth', 'digital signature', 'key encipherment'],
      privateKey: { rotationPolicy: 'Always' },
      issuerRef: { name: issuerRef.name, kind: issuerRef.kind, group: issuerRef.group },
    },
  };
}
