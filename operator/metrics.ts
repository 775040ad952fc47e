/**
 * Operator metrics: controller-runtime's names (so existing dashboards and alerts work) plus
 * tiercache's own per CacheCluster.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export const CONTROLLER = 'cachecluster';

export function createOperatorMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const reconcileTotal = new Counter({
    name: 'controller_runtime_reconcile_total',
    help: 'Total number of reconciliations per controller',
    labelNames: ['controller', 'result'],
    registers: [registry],
  });
  const reconcileErrors = new Counter({
    name: 'controller_runtime_reconcile_errors_total',
    help: 'Total number of reconciliation errors per controller',
    labelNames: ['controller'],
    registers: [registry],
  });
  const reconcileTime = new Histogram({
    name: 'controller_runtime_reconcile_time_seconds',
    help: 'Length of time per reconciliation per controller',
    labelNames: ['controller'],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [registry],
  });
  const activeWorkers = new Gauge({
    name: 'controller_runtime_active_workers',
    help: 'Number of currently used workers per controller',
    labelNames: ['controller'],
    registers: [registry],
  });
  new Gauge({
    name: 'controller_runtime_max_concurrent_reconciles',
    help: 'Maximum number of concurrent reconciles per controller',
    labelNames: ['controller'],
    registers: [registry],
  })
    .labels(CONTROLLER)
    .set(WORKERS);
  const depth = new Gauge({
    name: 'workqueue_depth',
    help: 'Current depth of workqueue',
    labelNames: ['name'],
    registers: [registry],
  });
  const adds = new Counter({
    name: 'workqueue_adds_total',
    help: 'Total number of adds handled by workqueue',
    labelNames: ['name'],
    registers: [registry],
  });
  const retries = new Counter({
    name: 'workqueue_retries_total',
    help: 'Total number of retries handled by workqueue',
    labelNames: ['name'],
    registers: [registry],
  });
  const leader = new Gauge({
    name: 'leader_election_master_status',
    help: 'Whether this replica leads (1) or stands by (0)',
    labelNames: ['name'],
    registers: [registry],
  });
  const failovers = new Counter({
    name: 'tiercache_failovers_total',
    help: 'Shards whose master changed to another pod',
    labelNames: ['cachecluster'],
    registers: [registry],
  });
  const slotsMigrated = new Counter({
    name: 'tiercache_slots_migrated_total',
    help: 'Slots moved between shards with their keys',
    labelNames: ['cachecluster'],
    registers: [registry],
  });
  const keysMigrated = new Counter({
    name: 'tiercache_keys_migrated_total',
    help: 'Keys moved between shards',
    labelNames: ['cachecluster'],
    registers: [registry],
  });
  const slotsLost = new Counter({
    name: 'tiercache_slots_lost_total',
    help: 'Slots whose shard lost every copy, given back empty to its new master',
    labelNames: ['cachecluster'],
    registers: [registry],
  });
  const clusterState = new Gauge({
    name: 'tiercache_cluster_state',
    help: 'Redis Cluster state per CacheCluster: 1 ok, 0 not ok',
    labelNames: ['cachecluster'],
    registers: [registry],
  });
  const readyShards = new Gauge({
    name: 'tiercache_ready_shards',
    help: 'Shards whose master serves its slots, per CacheCluster',
    labelNames: ['cachecluster'],
    registers: [registry],
  });
  return {
    registry,
    reconciled(result: 'success' | 'error' | 'requeue_after', seconds: number) {
      reconcileTotal.labels(CONTROLLER, result).inc();
      if (result === 'error') reconcileErrors.labels(CONTROLLER).inc();
      reconcileTime.labels(CONTROLLER).observe(seconds);
    },
    activeWorkers: activeWorkers.labels(CONTROLLER),
    /** Hooks for a work queue, by its name (controller-runtime's workqueue metrics). */
    queue: (name: string) => ({
      onDepth: (n: number) => depth.labels(name).set(n),
      onAdd: () => adds.labels(name).inc(),
      onRetry: () => retries.labels(name).inc(),
    }),
    leader: leader.labels('tiercache-operator'),
    failovers,
    slotsMigrated,
    keysMigrated,
    slotsLost,
    clusterState,
    readyShards,
  };
}

/** CacheClusters reconciled at once (each one by one worker at a time). */
export const WORKERS = 4;

export type OperatorMetrics = ReturnType<typeof createOperatorMetrics>;
