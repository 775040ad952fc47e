/**
 * Writes the chart's Grafana dashboards (charts/tiercache/files/dashboards/*.json) from their
 * specs here: `npm run dashboards` after changing one. The chart ships the JSON as ConfigMaps
 * (dashboards.enabled); test/integration/dashboards.test.ts checks the files are current.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type DashboardSpec, dashboard } from './grafana.ts';
import { operatorDashboard } from './operator.ts';
import { proxyDashboard } from './proxy.ts';
import { redisDashboard } from './redis.ts';

export const DASHBOARDS: Record<string, DashboardSpec> = {
  operator: operatorDashboard,
  redis: redisDashboard,
  proxy: proxyDashboard,
};

export const DASHBOARD_DIR = fileURLToPath(
  new URL('../../charts/tiercache/files/dashboards/', import.meta.url),
);

/** The file content of one dashboard, as committed. */
export const dashboardFile = (spec: DashboardSpec) =>
  `${JSON.stringify(dashboard(spec), null, 2)}\n`;

if (import.meta.main) {
  for (const [name, spec] of Object.entries(DASHBOARDS)) {
    const path = `${DASHBOARD_DIR}${name}.json`;
    writeFileSync(path, dashboardFile(spec));
    console.log(`wrote ${path}`);
  }
}
