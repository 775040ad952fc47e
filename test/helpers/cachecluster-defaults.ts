/**
 * The CacheCluster defaults users rely on (design.md): the CRD's schema fills them in on the
 * API server and `withDefaults` in the operator; both are checked against this one list.
 */
export const REDIS_DEFAULTS = {
  image: 'redis:7.2',
  shards: 3,
  replicasPerShard: 1,
  maxMemory: '256Mi',
  evictionPolicy: 'allkeys-lru',
  nodeTimeoutMs: 5000,
  persistence: {
    enabled: false,
    size: '1Gi',
    storageClassName: '',
    appendOnly: true,
    snapshotEverySeconds: 900,
    appendFsync: 'everysec',
  },
  auth: {
    enabled: true,
    users: { proxies: false, replication: false, operator: false },
    defaultUser: 'password',
  },
  tls: { enabled: false },
  exporter: {
    enabled: false,
    image: 'oliver006/redis_exporter:v1.74.0',
    resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { memory: '64Mi' } },
  },
};
