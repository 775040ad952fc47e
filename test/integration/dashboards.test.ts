/**
 * The chart's Grafana dashboards (specs in hack/dashboards, JSON in charts/tiercache/files/
 * dashboards): the committed JSON is what the specs build, every query parses (promtool), and
 * every series the dashboards and the alerts ask for is one a component really exposes — the
 * operator's registry, a running proxy's /metrics, and redis_exporter beside a real master and
 * replica of a Redis Cluster formed by the cluster manager. A renamed metric fails here instead
 * of leaving an empty panel or an alert that can never fire.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAllYaml } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DASHBOARD_DIR, DASHBOARDS, dashboardFile } from '../../hack/dashboards/build.ts';
import { dashboardQueries } from '../../hack/dashboards/grafana.ts';
import { ensureBinaries, RULES_GROUPS } from '../../hack/local-cluster/binaries.ts';
import { isMaster } from '../../lib/redis/topology.ts';
import { createOperatorMetrics } from '../../operator/metrics.ts';
import { Connections } from '../../operator/redis/connections.ts';
import { createCluster } from '../../operator/redis/create.ts';
import { observe } from '../../operator/redis/observe.ts';
import {
  declaredSeries,
  exporterBinary,
  sample,
  startExporter,
  stopExporters,
} from '../helpers/exporter.ts';
import { startProxy } from '../helpers/proxy.ts';
import { type RedisNode, startNodes } from '../helpers/redis.ts';
import { waitFor } from '../helpers/wait.ts';

const ALERTS = fileURLToPath(new URL('../../charts/tiercache/files/alerts.yaml', import.meta.url));
const SERIES = /\b(?:tiercache|controller_runtime|workqueue|leader_election|redis)_[a-z0-9_]+\b/g;

/** The dashboards as committed, by name. */
const committed = () =>
  Object.keys(DASHBOARDS).map((name) => ({
    name,
    model: JSON.parse(readFileSync(`${DASHBOARD_DIR}${name}.json`, 'utf8')),
  }));

/** A query with Grafana's variables given values, as Grafana sends it to Prometheus. */
const asPrometheusSees = (expr: string) =>
  expr.replaceAll('$__rate_interval', '1m').replace(/\$(\w+)/g, 'x');

const alertExprs = () =>
  (
    loadAllYaml(readFileSync(ALERTS, 'utf8'))[0] as {
      groups: { rules: { expr: string }[] }[];
    }
  ).groups.flatMap((g) => g.rules.map((r) => r.expr));

let promtool: string;
let nodes: RedisNode[] = [];
let dir: string;

beforeAll(() => {
  ({ promtool } = ensureBinaries(RULES_GROUPS) as { promtool: string });
  exporterBinary();
  dir = mkdtempSync(join(tmpdir(), 'tiercache-dashboards-'));
}, 1_800_000);

afterAll(async () => {
  await stopExporters();
  await Promise.all(nodes.map((n) => n.stop()));
  rmSync(dir, { recursive: true, force: true });
});

describe('Grafana dashboards', () => {
  it('are committed as their specs build them (npm run dashboards)', () => {
    for (const { name } of committed()) {
      expect(readFileSync(`${DASHBOARD_DIR}${name}.json`, 'utf8'), name).toBe(
        dashboardFile(DASHBOARDS[name]!),
      );
    }
  });

  it('ask Prometheus only queries that parse (promtool check rules)', () => {
    const groups = committed().map(({ name, model }) => ({
      name,
      rules: dashboardQueries(model).map((expr, i) => ({
        record: `dashboard:${name}:${i}`,
        expr: asPrometheusSees(expr),
      })),
    }));
    const total = groups.reduce((n, g) => n + g.rules.length, 0);
    expect(total).toBeGreaterThan(50);
    const file = join(dir, 'queries.json');
    // JSON is YAML: promtool reads the rule file as is.
    writeFileSync(file, JSON.stringify({ groups }));
    expect(execFileSync(promtool, ['check', 'rules', file], { encoding: 'utf8' })).toContain(
      `SUCCESS: ${total} rules found`,
    );
  });

  it('and the alerts ask only for series the operator, the proxy and redis_exporter expose', async () => {
    const exposed = new Set<string>();
    const add = (text: string) => {
      for (const s of declaredSeries(text)) exposed.add(s);
    };
    add(await createOperatorMetrics().registry.metrics());

    const proxy = await startProxy({});
    try {
      add(await (await fetch(`${proxy.url}/metrics`)).text());
    } finally {
      await proxy.close();
    }

    // A 3-master cluster with a replica each: replication series appear only on a master
    // with a replica attached, and replica-side ones only on a replica.
    nodes = await startNodes(6, { cluster: true });
    const conns = new Connections({ timeoutMs: 2000 });
    try {
      const addrs = nodes.map((n) => `${n.host}:${n.port}`);
      await createCluster(conns, addrs, { replicas: 1 });
      const view = await observe(conns, [addrs[0]!]);
      const master = [...view.known.values()].find(isMaster)!;
      const replica = [...view.known.values()].find((n) => n.masterId === master.id)!;
      for (const [role, node] of [
        ['master', master],
        ['replica', replica],
      ] as const) {
        const port = Number(node.addr.split(':')[1]);
        const exporter = await startExporter(port);
        const text = await waitFor(
          `${role} ${node.addr}: the exporter to see its replication link`,
          async () => {
            const t = await fetch(exporter.url)
              .then((r) => r.text())
              .catch(() => '');
            const linked =
              role === 'master'
                ? /^redis_connected_slave_offset_bytes\{/m.test(t)
                : /^redis_master_link_up\{[^}]*\} 1$/m.test(t);
            return linked && sample(t, 'redis_cluster_state') === 1 ? t : undefined;
          },
          20_000,
          200,
        );
        add(text);
      }
    } finally {
      conns.close();
    }

    const asked = new Set(
      [...committed().flatMap(({ model }) => dashboardQueries(model)), ...alertExprs()].flatMap(
        (e) => e.match(SERIES) ?? [],
      ),
    );
    expect(asked.size).toBeGreaterThan(40);
    expect([...asked].filter((s) => !exposed.has(s)).sort()).toEqual([]);
  }, 120_000);
});
