/**
 * The Helm chart: lints strictly, renders the operator with least privilege and restricted pod
 * security, carries the CRD from crds/ (its single source), and refuses values its schema
 * does not allow.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadAllYaml } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { type CacheCluster, withDefaults } from '../../operator/api/types.ts';
import { proxyDeployment } from '../../operator/resources/proxy.ts';
import { shardStatefulSet } from '../../operator/resources/redis-shard.ts';
import { helm } from '../helpers/kube.ts';

const CHART = fileURLToPath(new URL('../../charts/tiercache', import.meta.url));
const CRD = fileURLToPath(new URL('../../crds/cacheclusters.tiercache.io.yaml', import.meta.url));
const BACKUP_CRD = fileURLToPath(
  new URL('../../crds/cacheclusterbackups.tiercache.io.yaml', import.meta.url),
);
const ALERTS = `${CHART}/files/alerts.yaml`;

interface Doc {
  kind: string;
  metadata: { name: string };
  spec?: Record<string, unknown>;
  rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
}

interface PodMonitor {
  metadata: { name: string };
  spec: {
    namespaceSelector: Record<string, unknown>;
    selector: { matchLabels: Record<string, string> };
    podMetricsEndpoints: { port: string; relabelings: Record<string, unknown>[] }[];
  };
}

const render = (...set: string[]) =>
  loadAllYaml(
    helm([
      'template',
      'tc',
      CHART,
      '--namespace',
      'tiercache-system',
      '--kube-version',
      '1.36.3',
      '--include-crds',
      ...set.flatMap((s) => ['--set', s]),
    ]),
  ).filter(Boolean) as Doc[];

/** The operator's own ClusterRole (the CRD upgrade hook has another). */
const operatorRole = (docs: Doc[]) =>
  docs.find((d) => d.kind === 'ClusterRole' && d.metadata.name === 'tc-tiercache')!;

describe('charts/tiercache', () => {
  it('passes helm lint --strict', () => {
    expect(helm(['lint', '--strict', CHART])).toContain('1 chart(s) linted, 0 chart(s) failed');
  });

  it('renders the CRDs, the operator and its RBAC', () => {
    const docs = render('crds.upgrade=false');
    expect(docs.map((d) => d.kind).sort()).toEqual([
      'ClusterRole',
      'ClusterRoleBinding',
      'CustomResourceDefinition',
      'CustomResourceDefinition',
      'Deployment',
      'Role',
      'RoleBinding',
      'Service',
      'ServiceAccount',
    ]);
    const crds = docs.filter((d) => d.kind === 'CustomResourceDefinition');
    expect(crds).toEqual(
      expect.arrayContaining([
        loadAllYaml(readFileSync(CRD, 'utf8'))[0],
        loadAllYaml(readFileSync(BACKUP_CRD, 'utf8'))[0],
      ]),
    );
    expect(render('metrics.serviceMonitor.enabled=true').map((d) => d.kind)).toContain(
      'ServiceMonitor',
    );
  });

  it('renders the alerts as a PrometheusRule when asked, with the rules promtool checks', () => {
    expect(render().map((d) => d.kind)).not.toContain('PrometheusRule');
    const rule = render(
      'metrics.prometheusRule.enabled=true',
      'metrics.prometheusRule.labels.release=kps',
    ).find((d) => d.kind === 'PrometheusRule') as unknown as Doc & {
      metadata: { labels: Record<string, string> };
    };
    expect(rule.metadata.labels.release).toBe('kps');
    // The same groups as the file promtool tests, annotations' {{ $labels }} left for Prometheus.
    expect(rule.spec).toEqual(loadAllYaml(readFileSync(ALERTS, 'utf8'))[0]);
    expect(JSON.stringify(rule.spec)).toContain('{{ $labels.cachecluster }}');
  });

  it('renders PodMonitors that select the pods the operator makes, on their metrics ports', () => {
    expect(render().map((d) => d.kind)).not.toContain('PodMonitor');
    const monitors = render('metrics.podMonitor.enabled=true').filter(
      (d) => d.kind === 'PodMonitor',
    ) as unknown as PodMonitor[];
    expect(monitors.map((m) => m.metadata.name).sort()).toEqual([
      'tc-tiercache-proxy',
      'tc-tiercache-redis',
    ]);
    // The operator's own objects for a CacheCluster with the sidecar and one proxy.
    const cc: CacheCluster = {
      apiVersion: 'tiercache.io/v1alpha1',
      kind: 'CacheCluster',
      metadata: { name: 'cache', namespace: 'apps', uid: 'u', generation: 1 },
      spec: withDefaults({
        redis: { exporter: { enabled: true } },
        proxies: [{ name: 'tmdb-eu', upstream: 'tmdb', region: 'eu' }],
      }),
    };
    const pods = {
      redis: shardStatefulSet(cc, 0, cc.spec.redis, { zones: 0 }).spec!.template,
      proxy: proxyDeployment(cc, cc.spec.proxies[0]!, 'tiercache:0.1.0', {
        as: 'default',
        password: 'p',
      }).spec!.template,
    };
    for (const [component, template] of Object.entries(pods)) {
      const monitor = monitors.find((m) => m.metadata.name === `tc-tiercache-${component}`)!;
      expect(monitor.spec.namespaceSelector).toEqual({ any: true });
      expect(template.metadata!.labels, component).toMatchObject(monitor.spec.selector.matchLabels);
      const [endpoint] = monitor.spec.podMetricsEndpoints;
      const ports = template.spec!.containers.flatMap((c) => c.ports ?? []).map((p) => p.name);
      expect(ports, component).toContain(endpoint!.port);
      // The alerts and dashboards name the CacheCluster `cachecluster`, from the pod's label.
      expect(endpoint!.relabelings).toContainEqual({
        sourceLabels: ['__meta_kubernetes_pod_label_tiercache_io_cluster'],
        targetLabel: 'cachecluster',
      });
      expect(template.metadata!.labels!['tiercache.io/cluster']).toBe('cache');
    }
    const scoped = render('metrics.podMonitor.enabled=true', 'watchNamespaces={apps,web}').find(
      (d) => d.kind === 'PodMonitor',
    ) as unknown as PodMonitor;
    expect(scoped.spec.namespaceSelector).toEqual({ matchNames: ['apps', 'web'] });
  });

  it("renders the dashboards as ConfigMaps for Grafana's sidecar when asked, as committed", () => {
    expect(render().map((d) => d.kind)).not.toContain('ConfigMap');
    const maps = render(
      'dashboards.enabled=true',
      'dashboards.namespace=monitoring',
      'dashboards.annotations.grafana_folder=Caches',
    ).filter((d) => d.kind === 'ConfigMap') as unknown as {
      metadata: {
        name: string;
        namespace: string;
        labels: Record<string, string>;
        annotations: Record<string, string>;
      };
      data: Record<string, string>;
    }[];
    expect(maps.map((m) => m.metadata.name).sort()).toEqual([
      'tc-tiercache-dashboard-operator',
      'tc-tiercache-dashboard-proxy',
      'tc-tiercache-dashboard-redis',
    ]);
    for (const map of maps) {
      const name = map.metadata.name.replace('tc-tiercache-dashboard-', '');
      expect(map.metadata.namespace).toBe('monitoring');
      expect(map.metadata.labels.grafana_dashboard).toBe('1');
      expect(map.metadata.annotations.grafana_folder).toBe('Caches');
      expect(Object.keys(map.data)).toEqual([`tiercache-${name}.json`]);
      const json = readFileSync(`${CHART}/files/dashboards/${name}.json`, 'utf8');
      expect(JSON.parse(map.data[`tiercache-${name}.json`]!)).toEqual(JSON.parse(json));
    }
  });

  it('runs 2 operator replicas as non-root with a read-only root and no capabilities', () => {
    const deployment = render().find((d) => d.kind === 'Deployment') as unknown as {
      spec: {
        replicas: number;
        template: {
          spec: {
            securityContext: Record<string, unknown>;
            containers: { args: string[]; securityContext: Record<string, unknown> }[];
          };
        };
      };
    };
    expect(deployment.spec.replicas).toBe(2);
    const pod = deployment.spec.template.spec;
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(pod.containers[0]!.args).toEqual(['operator']);
    expect(pod.containers[0]!.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
  });

  it('grants no wildcard and no more than the operator uses', () => {
    const role = operatorRole(render());
    for (const rule of role.rules!) {
      expect(rule.verbs).not.toContain('*');
      expect(rule.resources).not.toContain('*');
      expect(rule.apiGroups).not.toContain('*');
    }
    const nodes = role.rules!.find((r) => r.resources.includes('nodes'))!;
    expect(nodes.verbs).toEqual(['list']);
    const pods = role.rules!.find((r) => r.resources.includes('pods'))!;
    expect(pods.verbs).toEqual(['get', 'list', 'watch', 'delete']);
    // Secrets are read by name: a list or watch would hand the operator every Secret's value.
    const secrets = role.rules!.find((r) => r.resources.includes('secrets'))!;
    expect(secrets.resources).toEqual(['secrets']);
    expect(secrets.verbs).toEqual(['get', 'create', 'patch', 'update']);
  });

  it('installed for named namespaces, grants Roles there and cluster-wide only the node list', () => {
    const docs = render('watchNamespaces={team-a,team-b}') as (Doc & {
      metadata: { namespace?: string };
    })[];
    const cluster = operatorRole(docs);
    expect(cluster.rules).toEqual([{ apiGroups: [''], resources: ['nodes'], verbs: ['list'] }]);
    const roles = docs.filter(
      (d) => d.kind === 'Role' && !d.metadata.name.endsWith('-leader-election'),
    );
    expect(roles.map((r) => r.metadata.namespace).sort()).toEqual(['team-a', 'team-b']);
    const everywhere = operatorRole(render());
    for (const role of roles)
      expect(role.rules).toEqual(everywhere.rules!.filter((r) => !r.resources.includes('nodes')));
    const bindings = docs.filter((d) => d.kind === 'RoleBinding');
    expect(bindings.map((b) => b.metadata.namespace).sort()).toEqual([
      'team-a',
      'team-b',
      'tiercache-system',
    ]);
    const env = (
      docs.find((d) => d.kind === 'Deployment') as unknown as {
        spec: { template: { spec: { containers: { env: { name: string; value?: string }[] }[] } } };
      }
    ).spec.template.spec.containers[0]!.env;
    expect(env.find((e) => e.name === 'WATCH_NAMESPACES')?.value).toBe('team-a,team-b');
    expect(() => render('watchNamespaces={Team_A}')).toThrow(/watchNamespaces/);
  });

  it('upgrades the CRD on helm upgrade: a pre-upgrade hook Job that may touch only that CRD', () => {
    const docs = render() as (Doc & {
      metadata: { annotations?: Record<string, string> };
    })[];
    const hooks = docs.filter((d) => d.metadata.annotations?.['helm.sh/hook'] === 'pre-upgrade');
    expect(hooks.map((d) => d.kind).sort()).toEqual([
      'ClusterRole',
      'ClusterRoleBinding',
      'Job',
      'ServiceAccount',
    ]);
    const job = hooks.find((d) => d.kind === 'Job') as unknown as {
      spec: {
        template: { spec: { serviceAccountName: string; containers: { args: string[] }[] } };
      };
    };
    expect(job.spec.template.spec.containers[0]!.args).toEqual(['crds']);
    expect(job.spec.template.spec.serviceAccountName).toBe('tc-tiercache-crds');
    const role = hooks.find((d) => d.kind === 'ClusterRole')!;
    expect(role.rules).toEqual([
      {
        apiGroups: ['apiextensions.k8s.io'],
        resources: ['customresourcedefinitions'],
        resourceNames: ['cacheclusters.tiercache.io', 'cacheclusterbackups.tiercache.io'],
        verbs: ['get', 'patch'],
      },
      {
        apiGroups: ['apiextensions.k8s.io'],
        resources: ['customresourcedefinitions'],
        verbs: ['create'],
      },
    ]);
  });

  it('refuses values outside its schema, naming them', () => {
    expect(() => render('replicaCount=0')).toThrow(/replicaCount.*minimum/);
    expect(() => render('logLevel=loud')).toThrow(/logLevel/);
    expect(() => render('unknownKey=1')).toThrow(/unknownKey/);
  });
});
