/**
 * The proxies' dashboard: where answers come from (per tier and category), latency per route
 * class, the upstreams (calls, 429s, back-off) and L2's health (breakers, errors), per region.
 */
import type { DashboardSpec } from './grafana.ts';

const REGION = 'region=~"$region"';
const RATE = '[$__rate_interval]';
const answers = (filter = '') =>
  `rate(tiercache_request_duration_seconds_count{${REGION}${filter}}${RATE})`;
const lookups = (kind: 'hits' | 'misses', by: string) =>
  `sum by (${by}) (rate(tiercache_cache_${kind}_total{${REGION}}${RATE}))`;
const quantiles = (by: string, legend: string) =>
  [0.5, 0.99].map((q) => ({
    expr: `histogram_quantile(${q}, sum by (le, ${by}) (rate(tiercache_request_duration_seconds_bucket{${REGION}}${RATE})))`,
    legend: `p${q * 100} ${legend}`,
  }));

export const proxyDashboard: DashboardSpec = {
  uid: 'tiercache-proxy',
  title: 'tiercache / proxies',
  description:
    'The regional caching proxies: hit rate per tier and category, latency per route class, upstream calls and 429s, stale answers and the L2 circuit breakers.',
  variables: [
    {
      name: 'region',
      label: 'Region',
      query: 'label_values(tiercache_request_duration_seconds_count, region)',
      multi: true,
    },
  ],
  rows: [
    {
      title: 'Answers',
      panels: [
        {
          title: 'Answered from a cache',
          description: 'L1, L2 or a stale entry, over every cacheable answer.',
          kind: 'stat',
          width: 6,
          unit: 'percentunit',
          queries: [
            {
              expr: `sum(${answers(',source=~"L1|L2|STALE"')}) / sum(${answers(',source!="BYPASS"')})`,
            },
          ],
        },
        {
          title: 'Requests',
          kind: 'stat',
          width: 6,
          unit: 'reqps',
          queries: [{ expr: `sum(${answers()})` }],
        },
        {
          title: 'Upstream calls',
          kind: 'stat',
          width: 6,
          unit: 'reqps',
          queries: [
            {
              expr: `sum(rate(tiercache_upstream_request_duration_seconds_count{${REGION}}${RATE}))`,
            },
          ],
        },
        {
          title: 'L2 breaker',
          description: '0 closed, 1 half-open, 2 open (L2 skipped: L1 and the upstream answer).',
          kind: 'stat',
          width: 6,
          queries: [{ expr: `max(tiercache_l2_breaker_state{${REGION}})` }],
          thresholds: { red: 1 },
        },
        {
          title: 'Answers by source',
          unit: 'reqps',
          queries: [{ expr: `sum by (source) (${answers()})`, legend: '{{source}}' }],
        },
        {
          title: 'Hit rate per tier',
          unit: 'percentunit',
          min: 0,
          max: 1,
          queries: [
            {
              expr: `${lookups('hits', 'tier')} / (${lookups('hits', 'tier')} + ${lookups('misses', 'tier')})`,
              legend: '{{tier}}',
            },
          ],
        },
        {
          title: 'Hit rate per category',
          unit: 'percentunit',
          min: 0,
          max: 1,
          queries: [
            {
              expr: `${lookups('hits', 'tier, category')} / (${lookups('hits', 'tier, category')} + ${lookups('misses', 'tier, category')})`,
              legend: '{{tier}} {{category}}',
            },
          ],
        },
      ],
    },
    {
      title: 'Latency',
      panels: [
        { title: 'Per route class', unit: 's', queries: quantiles('route', '{{route}}') },
        { title: 'Per source', unit: 's', queries: quantiles('source', '{{source}}') },
        {
          title: 'Upstream calls',
          unit: 's',
          queries: [
            {
              expr: `histogram_quantile(0.99, sum by (le, upstream) (rate(tiercache_upstream_request_duration_seconds_bucket{${REGION}}${RATE})))`,
              legend: 'p99 {{upstream}}',
            },
          ],
        },
      ],
    },
    {
      title: 'Upstreams',
      panels: [
        {
          title: 'Upstream calls by status',
          unit: 'reqps',
          queries: [
            {
              expr: `sum by (upstream, status) (rate(tiercache_upstream_request_duration_seconds_count{${REGION}}${RATE}))`,
              legend: '{{upstream}} {{status}}',
            },
          ],
        },
        {
          title: 'Rate limited',
          description:
            '429s from the upstream, requests held back while backing off, and background refreshes shed.',
          unit: 'reqps',
          queries: [
            {
              expr: `sum by (upstream) (rate(tiercache_upstream_request_duration_seconds_count{${REGION},status="429"}${RATE}))`,
              legend: '{{upstream}} 429',
            },
            {
              expr: `sum by (upstream) (rate(tiercache_upstream_backoff_total{${REGION}}${RATE}))`,
              legend: '{{upstream}} held back',
            },
            {
              expr: `sum by (upstream) (rate(tiercache_upstream_refresh_shed_total{${REGION}}${RATE}))`,
              legend: '{{upstream}} refresh shed',
            },
          ],
        },
        {
          title: 'Stale served and coalesced',
          unit: 'reqps',
          queries: [
            {
              expr: `sum by (reason) (rate(tiercache_stale_served_total{${REGION}}${RATE}))`,
              legend: '{{reason}}',
            },
            {
              expr: `sum by (scope) (rate(tiercache_coalesced_waits_total{${REGION}}${RATE}))`,
              legend: 'waited ({{scope}})',
            },
          ],
        },
      ],
    },
    {
      title: 'L1 and L2',
      panels: [
        {
          title: 'L2 breakers',
          description: 'Per target and per Redis master: 0 closed, 1 half-open, 2 open.',
          min: 0,
          max: 2,
          queries: [
            {
              expr: `max by (region, target) (tiercache_l2_breaker_state{${REGION}})`,
              legend: '{{region}} {{target}}',
            },
            {
              expr: `max by (region, node) (tiercache_l2_node_breaker_state{${REGION}})`,
              legend: '{{region}} {{node}}',
            },
          ],
        },
        {
          title: 'L2 errors and slow reads',
          unit: 'ops',
          queries: [
            {
              expr: `sum by (target, op) (rate(tiercache_l2_errors_total{${REGION}}${RATE}))`,
              legend: '{{target}} {{op}} failed',
            },
            {
              expr: `sum by (target) (rate(tiercache_l2_slow_reads_total{${REGION}}${RATE}))`,
              legend: '{{target}} past the soft deadline',
            },
          ],
        },
        {
          title: 'L1 size',
          unit: 'bytes',
          queries: [
            {
              expr: `sum by (region, pool) (tiercache_l1_bytes{${REGION}})`,
              legend: '{{region}} {{pool}}',
            },
          ],
        },
      ],
    },
  ],
};
