/** The operator's dashboard: its controller (reconciles, queue, leadership) and what it did to each CacheCluster. */
import type { DashboardSpec } from './grafana.ts';

const CC = 'cachecluster=~"$cachecluster"';
const RATE = '[$__rate_interval]';

export const operatorDashboard: DashboardSpec = {
  uid: 'tiercache-operator',
  title: 'tiercache / operator',
  description:
    'The tiercache operator: reconciles, work queue and leadership, and per CacheCluster its cluster state, failovers and slot migrations.',
  variables: [
    {
      name: 'cachecluster',
      label: 'CacheCluster',
      query: 'label_values(tiercache_cluster_state, cachecluster)',
      multi: true,
    },
  ],
  rows: [
    {
      title: 'Controller',
      panels: [
        {
          title: 'Leading replicas',
          description:
            'Operator replicas holding the Lease: 1 when healthy, 0 means nothing reconciles.',
          kind: 'stat',
          width: 6,
          queries: [{ expr: 'sum(leader_election_master_status)' }],
          thresholds: { red: 1, greenAbove: true },
        },
        {
          title: 'Work queue depth',
          kind: 'stat',
          width: 6,
          queries: [{ expr: 'sum(workqueue_depth)' }],
        },
        {
          title: 'Reconcile errors (1h)',
          kind: 'stat',
          width: 6,
          queries: [{ expr: 'sum(increase(controller_runtime_reconcile_errors_total[1h]))' }],
          thresholds: { red: 1 },
        },
        {
          title: 'Busy workers',
          kind: 'stat',
          width: 6,
          queries: [
            { expr: 'sum(controller_runtime_active_workers)', legend: 'busy' },
            { expr: 'sum(controller_runtime_max_concurrent_reconciles)', legend: 'of' },
          ],
        },
        {
          title: 'Reconciles by result',
          unit: 'ops',
          queries: [
            {
              expr: `sum by (result) (rate(controller_runtime_reconcile_total${RATE}))`,
              legend: '{{result}}',
            },
          ],
        },
        {
          title: 'Reconcile duration',
          unit: 's',
          queries: [0.5, 0.99].map((q) => ({
            expr: `histogram_quantile(${q}, sum by (le) (rate(controller_runtime_reconcile_time_seconds_bucket${RATE})))`,
            legend: `p${q * 100}`,
          })),
        },
        {
          title: 'Work queue',
          queries: [
            { expr: 'sum by (name) (workqueue_depth)', legend: 'depth' },
            { expr: `sum by (name) (rate(workqueue_adds_total${RATE}))`, legend: 'adds/s' },
            { expr: `sum by (name) (rate(workqueue_retries_total${RATE}))`, legend: 'retries/s' },
          ],
        },
      ],
    },
    {
      title: 'CacheClusters',
      panels: [
        {
          title: 'Cluster state (1 ok)',
          min: 0,
          max: 1,
          queries: [{ expr: `tiercache_cluster_state{${CC}}`, legend: '{{cachecluster}}' }],
        },
        {
          title: 'Shards serving their slots',
          queries: [{ expr: `tiercache_ready_shards{${CC}}`, legend: '{{cachecluster}}' }],
        },
        {
          title: 'Failovers',
          description:
            'Shards whose master moved to another pod (native failover or the operator).',
          queries: [
            {
              expr: `sum by (cachecluster) (increase(tiercache_failovers_total{${CC}}${RATE}))`,
              legend: '{{cachecluster}}',
            },
          ],
        },
        {
          title: 'Slots migrated',
          unit: 'ops',
          queries: [
            {
              expr: `sum by (cachecluster) (rate(tiercache_slots_migrated_total{${CC}}${RATE}))`,
              legend: '{{cachecluster}}',
            },
          ],
        },
        {
          title: 'Keys migrated',
          unit: 'ops',
          queries: [
            {
              expr: `sum by (cachecluster) (rate(tiercache_keys_migrated_total{${CC}}${RATE}))`,
              legend: '{{cachecluster}}',
            },
          ],
        },
        {
          title: 'Slots lost',
          description:
            'Slots whose shard lost every copy and were given back empty: their keys refill from the upstream.',
          queries: [
            {
              expr: `sum by (cachecluster) (increase(tiercache_slots_lost_total{${CC}}${RATE}))`,
              legend: '{{cachecluster}}',
            },
          ],
        },
      ],
    },
  ],
};
