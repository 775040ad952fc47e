/** `tiercache operator` settings, from the environment (the chart sets them). */
import { bool, integer, nameList, oneOf, readEnv, text, type Values } from '../lib/env.ts';

export const operatorEnv = {
  host: text('HOST', { default: '0.0.0.0', help: 'address of the health and metrics server' }),
  port: integer('PORT', {
    default: 8080,
    min: 1,
    max: 65_535,
    help: 'port of /healthz, /readyz and /metrics',
  }),
  logLevel: oneOf('LOG_LEVEL', ['fatal', 'error', 'warn', 'info', 'debug', 'trace'], {
    default: 'info',
    help: 'pino log level',
  }),
  image: text('OPERATOR_IMAGE', {
    default: 'tiercache:latest',
    help: 'image the regional proxies run unless a proxy names its own (the operator’s own image)',
  }),
  podName: text('POD_NAME', {
    default: undefined,
    help: 'this pod’s name: its identity in leader election (default: hostname and pid)',
  }),
  namespace: text('POD_NAMESPACE', {
    default: 'default',
    help: 'namespace of the leader election Lease (the operator’s own namespace)',
  }),
  watchNamespaces: nameList('WATCH_NAMESPACES', {
    default: [],
    help: 'namespaces whose CacheClusters this operator manages (empty: every namespace)',
  }),
  leaderElection: bool('LEADER_ELECTION', {
    default: true,
    help: 'elect one active replica through a Lease (turn off only for a single replica)',
  }),
  leaseSeconds: integer('LEASE_DURATION', {
    default: 15,
    min: 2,
    max: 300,
    help: 'seconds a leader’s Lease lasts without renewal before another replica takes over',
  }),
  resyncSeconds: integer('RESYNC_PERIOD', {
    default: 30,
    min: 1,
    max: 3600,
    help: 'seconds between periodic reconciles of every CacheCluster',
  }),
  apiServerTimeoutSeconds: integer('API_SERVER_TIMEOUT', {
    default: 30,
    min: 1,
    max: 600,
    help: 'seconds to wait at start for the Kubernetes API server to answer before exiting with its error',
  }),
  redisTimeoutMs: integer('REDIS_TIMEOUT', {
    default: 3000,
    min: 100,
    max: 60_000,
    help: 'ms each command to a Redis node may take',
  }),
};

export type OperatorConfig = Values<typeof operatorEnv>;

export function loadOperatorConfig(env: NodeJS.ProcessEnv): OperatorConfig {
  return readEnv(operatorEnv, env);
}
