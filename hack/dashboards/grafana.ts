/**
 * A small builder for Grafana dashboard JSON (schema 39): rows of time series and stat panels
 * on a Prometheus data source chosen by a variable, laid out left to right on Grafana's
 * 24-column grid. Pure: it returns objects, hack/dashboards/build.ts writes them.
 */

export interface Query {
  expr: string;
  legend?: string;
}

export interface Panel {
  title: string;
  description?: string;
  kind?: 'timeseries' | 'stat';
  unit?: string;
  /** Grid columns (of 24); panels of a row wrap onto the next line when full. */
  width?: number;
  queries: Query[];
  /** Stat panels: the value at which the background turns red (green below it), or the reverse. */
  thresholds?: { red: number; greenAbove?: boolean };
  min?: number;
  max?: number;
}

export interface Row {
  title: string;
  panels: Panel[];
}

export interface Variable {
  name: string;
  label: string;
  /** A Grafana `label_values(…)` query. */
  query: string;
  multi?: boolean;
}

export interface DashboardSpec {
  uid: string;
  title: string;
  description: string;
  variables: Variable[];
  rows: Row[];
}

// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana's variable syntax, not a JS template
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' };
const PANEL_HEIGHT = { timeseries: 8, stat: 4 };

function thresholdSteps(t: Panel['thresholds']) {
  if (!t) return { mode: 'absolute', steps: [{ color: 'green', value: null }] };
  const [below, above] = t.greenAbove ? ['red', 'green'] : ['green', 'red'];
  return {
    mode: 'absolute',
    steps: [
      { color: below, value: null },
      { color: above, value: t.red },
    ],
  };
}

function panelJson(p: Panel, id: number, gridPos: Record<string, number>) {
  const kind = p.kind ?? 'timeseries';
  return {
    id,
    type: kind,
    title: p.title,
    ...(p.description ? { description: p.description } : {}),
    datasource: DATASOURCE,
    gridPos,
    fieldConfig: {
      defaults: {
        unit: p.unit ?? 'short',
        ...(p.min !== undefined ? { min: p.min } : {}),
        ...(p.max !== undefined ? { max: p.max } : {}),
        thresholds: thresholdSteps(p.thresholds),
        ...(kind === 'timeseries' ? { custom: { fillOpacity: 10, showPoints: 'never' } } : {}),
      },
      overrides: [],
    },
    options:
      kind === 'stat'
        ? {
            colorMode: p.thresholds ? 'background' : 'value',
            graphMode: 'none',
            reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
          }
        : {
            legend: { displayMode: 'table', placement: 'bottom', calcs: ['lastNotNull', 'max'] },
            tooltip: { mode: 'multi', sort: 'desc' },
          },
    targets: p.queries.map((q, i) => ({
      datasource: DATASOURCE,
      expr: q.expr,
      legendFormat: q.legend ?? '__auto',
      refId: String.fromCharCode(65 + i),
    })),
  };
}

function variableJson(v: Variable) {
  return {
    name: v.name,
    label: v.label,
    type: 'query',
    datasource: DATASOURCE,
    definition: v.query,
    query: { query: v.query, refId: 'PrometheusVariableQueryEditor-VariableQuery' },
    refresh: 2,
    sort: 1,
    includeAll: v.multi ?? false,
    multi: v.multi ?? false,
    ...(v.multi ? { allValue: '.*', current: { text: 'All', value: '$__all' } } : {}),
  };
}

/** The dashboard's JSON model, as Grafana's sidecar loads it from a ConfigMap. */
export function dashboard(spec: DashboardSpec): Record<string, unknown> {
  const panels: Record<string, unknown>[] = [];
  let id = 1;
  let y = 0;
  for (const row of spec.rows) {
    panels.push({
      id: id++,
      type: 'row',
      title: row.title,
      collapsed: false,
      gridPos: { h: 1, w: 24, x: 0, y },
      panels: [],
    });
    y += 1;
    let x = 0;
    let lineHeight = 0;
    for (const p of row.panels) {
      const w = p.width ?? 8;
      const h = PANEL_HEIGHT[p.kind ?? 'timeseries'];
      if (x + w > 24) {
        y += lineHeight;
        x = 0;
        lineHeight = 0;
      }
      panels.push(panelJson(p, id++, { h, w, x, y }));
      x += w;
      lineHeight = Math.max(lineHeight, h);
    }
    y += lineHeight;
  }
  return {
    uid: spec.uid,
    title: spec.title,
    description: spec.description,
    tags: ['tiercache'],
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    timezone: 'browser',
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Data source',
          type: 'datasource',
          query: 'prometheus',
          refresh: 1,
        },
        ...spec.variables.map(variableJson),
      ],
    },
    panels,
  };
}

/** Every PromQL expression of a dashboard model (what the tests parse and check). */
export function dashboardQueries(model: { panels?: unknown[] }): string[] {
  const out: string[] = [];
  const walk = (panels: unknown[]) => {
    for (const p of panels as { targets?: { expr: string }[]; panels?: unknown[] }[]) {
      for (const t of p.targets ?? []) out.push(t.expr);
      walk(p.panels ?? []);
    }
  };
  walk(model.panels ?? []);
  return out;
}
