/**
 * The Helm chart: lints strictly, renders the operator with least privilege and restricted pod
 * security, carries the CRD from crds/ (its single source), and refuses values its schema
 * does not allow.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadAllYaml } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { helm } from '../helpers/kube.ts';

const CHART = fileURLToPath(new URL('../../charts/tiercache', import.meta.url));
const CRD = fileURLToPath(new URL('../../crds/cacheclusters.tiercache.io.yaml', import.meta.url));

interface Doc {
  kind: string;
  metadata: { name: string };
  spec?: Record<string, unknown>;
  rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[];
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

describe('charts/tiercache', () => {
  it('passes helm lint --strict', () => {
    expect(helm(['lint', '--strict', CHART])).toContain('1 chart(s) linted, 0 chart(s) failed');
  });

  it('renders the CRD, the operator and its RBAC', () => {
    const docs = render();
    expect(docs.map((d) => d.kind).sort()).toEqual([
      'ClusterRole',
      'ClusterRoleBinding',
      'CustomResourceDefinition',
      'Deployment',
      'Role',
      'RoleBinding',
      'Service',
      'ServiceAccount',
    ]);
    const crd = docs.find((d) => d.kind === 'CustomResourceDefinition')!;
    expect(crd).toEqual(loadAllYaml(readFileSync(CRD, 'utf8'))[0]);
    expect(render('metrics.serviceMonitor.enabled=true').map((d) => d.kind)).toContain(
      'ServiceMonitor',
    );
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
    const role = render().find((d) => d.kind === 'ClusterRole')!;
    for (const rule of role.rules!) {
      expect(rule.verbs).not.toContain('*');
      expect(rule.resources).not.toContain('*');
      expect(rule.apiGroups).not.toContain('*');
    }
    const nodes = role.rules!.find((r) => r.resources.includes('nodes'))!;
    expect(nodes.verbs).toEqual(['list']);
    const pods = role.rules!.find((r) => r.resources.includes('pods'))!;
    expect(pods.verbs).toEqual(['get', 'list', 'watch', 'delete']);
  });

  it('refuses values outside its schema, naming them', () => {
    expect(() => render('replicaCount=0')).toThrow(/replicaCount.*minimum/);
    expect(() => render('logLevel=loud')).toThrow(/logLevel/);
    expect(() => render('unknownKey=1')).toThrow(/unknownKey/);
  });
});
