/**
 * Where the local cluster keeps its state and which loopback ports it uses. Everything lives
 * under `.local/` in the checkout (git-ignored); `cluster:down` stops what it started.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const LOCAL = join(REPO, '.local');
export const STATE = join(LOCAL, 'cluster');

export const paths = {
  kubeconfig: join(LOCAL, 'kubeconfig'),
  bin: join(LOCAL, 'bin'),
  pki: join(STATE, 'pki'),
  etcdData: join(STATE, 'etcd'),
  logs: join(STATE, 'logs'),
  pids: join(STATE, 'pids'),
  componentKubeconfigs: join(STATE, 'kubeconfigs'),
  /** Per-pod working directories (overlay upper dirs, rendered volumes). */
  pods: join(STATE, 'pods'),
  /** Persistent volume claims: one directory per claim, kept across pod replacement. */
  claims: join(STATE, 'claims'),
};

export const ports = {
  etcdClient: Number(process.env.LOCAL_CLUSTER_ETCD_PORT ?? 12379),
  etcdPeer: Number(process.env.LOCAL_CLUSTER_ETCD_PEER_PORT ?? 12380),
  apiserver: Number(process.env.LOCAL_CLUSTER_API_PORT ?? 16443),
};

export const network = {
  serviceCidr: '10.96.0.0/16',
  /** The `kubernetes` Service's cluster IP (first of the range): a SAN of the API server's certificate. */
  kubernetesServiceIp: '10.96.0.1',
  /** Cluster DNS for pod processes listens here, on port 53. */
  dnsIp: '127.0.53.53',
  clusterDomain: 'cluster.local',
};

export const apiserverUrl = () => `https://127.0.0.1:${ports.apiserver}`;

/** Fake nodes: three zones in two regions; pod IPs come from each node's 127.x.y.0/24. */
export const NODES = [
  {
    name: 'tc-node-1',
    region: 'ap-southeast-1',
    zone: 'ap-southeast-1a',
    podCidr: '127.10.1.0/24',
  },
  {
    name: 'tc-node-2',
    region: 'ap-southeast-1',
    zone: 'ap-southeast-1b',
    podCidr: '127.10.2.0/24',
  },
  { name: 'tc-node-3', region: 'eu-west-1', zone: 'eu-west-1a', podCidr: '127.10.3.0/24' },
] as const;
