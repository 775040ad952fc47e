/**
 * The Redis dashboard: one CacheCluster's nodes as redis_exporter (the optional sidecar,
 * spec.redis.exporter.enabled) reports them, labelled by the chart's PodMonitor with
 * `namespace`, `pod` and `cachecluster`.
 */
import type { DashboardSpec } from './grafana.ts';

const NODES = 'namespace="$namespace",cachecluster="$cachecluster",pod=~"$pod"';
const RATE = '[$__rate_interval]';
const perNode = (metric: string) => `sum by (pod) (rate(${metric}{${NODES}}${RATE}))`;

export const redisDashboard: DashboardSpec = {
  uid: 'tiercache-redis',
  title: 'tiercache / Redis',
  description:
    "A CacheCluster's Redis nodes from their redis_exporter sidecars: cluster state and slots, memory, commands, hit ratio, evictions and replication lag per node.",
  variables: [
    { name: 'namespace', label: 'Namespace', query: 'label_values(redis_up, namespace)' },
    {
      name: 'cachecluster',
      label: 'CacheCluster',
      query: 'label_values(redis_up{namespace="$namespace"}, cachecluster)',
    },
    {
      name: 'pod',
      label: 'Pod',
      query: 'label_values(redis_up{namespace="$namespace",cachecluster="$cachecluster"}, pod)',
      multi: true,
    },
  ],
  rows: [
    {
      title: 'Cluster',
      panels: [
        {
          title: 'Cluster state',
          description: '1 when every node says cluster_state:ok.',
          kind: 'stat',
          width: 4,
          queries: [{ expr: `min(redis_cluster_state{${NODES}})` }],
          thresholds: { red: 1, greenAbove: true },
        },
        {
          title: 'Slots served',
          kind: 'stat',
          width: 4,
          queries: [{ expr: `min(redis_cluster_slots_ok{${NODES}})` }],
          thresholds: { red: 16384, greenAbove: true },
        },
        {
          title: 'Nodes up',
          kind: 'stat',
          width: 4,
          queries: [{ expr: `sum(redis_up{${NODES}})` }],
        },
        {
          title: 'Masters',
          kind: 'stat',
          width: 4,
          queries: [{ expr: `count(redis_instance_info{${NODES},role="master"})` }],
        },
        {
          title: 'Keys',
          description: 'Keys held by the masters (replicas hold copies of the same keys).',
          kind: 'stat',
          width: 4,
          queries: [
            {
              expr: `sum(redis_db_keys{${NODES}} and on (namespace, pod) redis_instance_info{role="master"})`,
            },
          ],
        },
        {
          title: 'Hit ratio',
          kind: 'stat',
          width: 4,
          unit: 'percentunit',
          queries: [
            {
              expr: `sum(rate(redis_keyspace_hits_total{${NODES}}${RATE})) / (sum(rate(redis_keyspace_hits_total{${NODES}}${RATE})) + sum(rate(redis_keyspace_misses_total{${NODES}}${RATE})))`,
            },
          ],
        },
      ],
    },
    {
      title: 'Per node',
      panels: [
        {
          title: 'Memory used',
          unit: 'bytes',
          queries: [
            { expr: `sum by (pod) (redis_memory_used_bytes{${NODES}})`, legend: '{{pod}}' },
            { expr: `max(redis_memory_max_bytes{${NODES}})`, legend: 'maxmemory' },
          ],
        },
        {
          title: 'Commands',
          unit: 'ops',
          queries: [{ expr: perNode('redis_commands_processed_total'), legend: '{{pod}}' }],
        },
        {
          title: 'Hit ratio',
          unit: 'percentunit',
          min: 0,
          max: 1,
          queries: [
            {
              expr: `${perNode('redis_keyspace_hits_total')} / (${perNode('redis_keyspace_hits_total')} + ${perNode('redis_keyspace_misses_total')})`,
              legend: '{{pod}}',
            },
          ],
        },
        {
          title: 'Evicted and expired keys',
          description:
            'Evictions are a full cache making room; rising with memory at maxmemory means the cache is too small.',
          unit: 'ops',
          queries: [
            { expr: perNode('redis_evicted_keys_total'), legend: '{{pod}} evicted' },
            { expr: perNode('redis_expired_keys_total'), legend: '{{pod}} expired' },
          ],
        },
        {
          title: 'Keys',
          queries: [{ expr: `sum by (pod) (redis_db_keys{${NODES}})`, legend: '{{pod}}' }],
        },
        {
          title: 'Connected clients',
          queries: [
            { expr: `sum by (pod) (redis_connected_clients{${NODES}})`, legend: '{{pod}}' },
          ],
        },
      ],
    },
    {
      title: 'Replication and slots',
      panels: [
        {
          title: 'Replication offset lag',
          description:
            "Bytes of the master's replication stream each replica has not acknowledged: what a failover now would lose.",
          unit: 'bytes',
          queries: [
            {
              expr: `max by (namespace, pod) (redis_master_repl_offset{${NODES}}) - on (namespace, pod) group_right redis_connected_slave_offset_bytes{${NODES}}`,
              legend: '{{pod}} → {{slave_ip}}',
            },
          ],
        },
        {
          title: 'Replica lag',
          unit: 's',
          queries: [
            {
              expr: `redis_connected_slave_lag_seconds{${NODES}}`,
              legend: '{{pod}} → {{slave_ip}}',
            },
          ],
        },
        {
          title: 'Slots',
          queries: [
            { expr: `max(redis_cluster_slots_assigned{${NODES}})`, legend: 'assigned' },
            { expr: `min(redis_cluster_slots_ok{${NODES}})`, legend: 'ok' },
            { expr: `max(redis_cluster_slots_pfail{${NODES}})`, legend: 'possibly failing' },
            { expr: `max(redis_cluster_slots_fail{${NODES}})`, legend: 'failing' },
          ],
        },
        {
          title: 'Known nodes',
          queries: [
            { expr: `sum by (pod) (redis_cluster_known_nodes{${NODES}})`, legend: '{{pod}}' },
          ],
        },
        {
          title: 'Network',
          unit: 'Bps',
          queries: [
            { expr: perNode('redis_net_input_bytes_total'), legend: '{{pod}} in' },
            { expr: perNode('redis_net_output_bytes_total'), legend: '{{pod}} out' },
          ],
        },
      ],
    },
  ],
};
