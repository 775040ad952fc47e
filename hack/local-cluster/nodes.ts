/** The fake nodes as Node objects: zone and region labels, kwok's annotation, a loopback pod CIDR. */
import { NODES } from './layout.ts';

export const KWOK_ANNOTATION = 'kwok.x-k8s.io/node';

export function nodeManifests(): string {
  return NODES.map(
    (n) => `apiVersion: v1
kind: Node
metadata:
  name: ${n.name}
  annotations:
    ${KWOK_ANNOTATION}: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/hostname: ${n.name}
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    type: kwok
    topology.kubernetes.io/region: ${n.region}
    topology.kubernetes.io/zone: ${n.zone}
spec:
  podCIDR: ${n.podCidr}
  podCIDRs: [${n.podCidr}]
`,
  ).join('---\n');
}
