/**
 * Helpers for tests against a Kubernetes API: kubectl with the suite's kubeconfig, waiting on
 * objects, and (local control plane only) running a command inside a pod's process root.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { V1PodList } from '@kubernetes/client-node';
import { REPO } from '../../hack/local-cluster/layout.ts';
import { isPodReady } from '../../lib/pods.ts';
import { waitFor } from './wait.ts';

export const kubeconfigPath = () =>
  process.env.E2E_KUBECONFIG ?? join(REPO, '.local', 'kubeconfig');
const kubectlBin = () =>
  process.env.E2E_KUBECONFIG ? 'kubectl' : join(REPO, '.local', 'bin', 'kubectl');

const helmBin = () => (process.env.E2E_KUBECONFIG ? 'helm' : join(REPO, '.local', 'bin', 'helm'));

/** Runs helm against the suite's cluster; a failure throws with helm's stderr. */
export function helm(args: string[]): string {
  try {
    return execFileSync(helmBin(), [`--kubeconfig=${kubeconfigPath()}`, ...args], {
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (err) {
    throw new Error(
      `helm ${args.join(' ')} failed: ${String((err as { stderr?: string }).stderr ?? err).trim()}`,
    );
  }
}

const CHART = join(REPO, 'charts', 'tiercache');

/**
 * Installs the operator's chart as users do (`helm install --wait`), running `image`
 * (E2E_IMAGE, or the tiercache image the local pod runner maps to the checkout).
 */
/** `set`: more chart values (`key=value`), e.g. `watchNamespaces={a,b}`. */
export function installOperator(release: string, namespace: string, set: string[] = []): void {
  const [repository, tag] = (process.env.E2E_IMAGE ?? 'tiercache:0.1.0').split(':') as [
    string,
    string,
  ];
  helm([
    'install',
    release,
    CHART,
    '--namespace',
    namespace,
    '--create-namespace',
    '--set',
    `image.repository=${repository}`,
    '--set',
    `image.tag=${tag}`,
    '--set',
    'leaderElection.leaseDurationSeconds=6',
    ...set.flatMap((v) => ['--set', v]),
    '--wait',
    '--timeout',
    '120s',
  ]);
}

/** `helm upgrade` of an installed release with its values: the chart's pre-upgrade hooks run. */
export function upgradeOperator(release: string, namespace: string): void {
  helm([
    'upgrade',
    release,
    CHART,
    '--namespace',
    namespace,
    '--reuse-values',
    '--wait',
    '--timeout',
    '120s',
  ]);
}

/** A new namespace holding a CacheCluster `cache` of this spec (the CRD defaults the rest). */
export function createCacheCluster(namespace: string, spec: object): void {
  kubectl(['create', 'namespace', namespace]);
  kubectl(
    ['apply', '-n', namespace, '-f', '-'],
    JSON.stringify({
      apiVersion: 'tiercache.io/v1alpha1',
      kind: 'CacheCluster',
      metadata: { name: 'cache' },
      spec,
    }),
  );
}

/** The operator replica holding the leader-election Lease in `namespace`. */
export function leaseHolder(namespace: string): string | undefined {
  return kubectlJson<{ spec: { holderIdentity?: string } }>([
    'get',
    'lease',
    'tiercache-operator',
    '-n',
    namespace,
  ]).spec.holderIdentity;
}

/** Best effort: the namespaces go and the operator's release is uninstalled, whatever fails. */
export function removeAll(release: string, operatorNamespace: string, namespaces: string[]): void {
  for (const run of [
    () => kubectl(['delete', 'namespace', ...namespaces, '--wait=false']),
    () => helm(['uninstall', release, '--namespace', operatorNamespace]),
    () => kubectl(['delete', 'namespace', operatorNamespace, '--wait=false']),
  ])
    try {
      run();
    } catch {
      // best effort: the next step still runs
    }
}

/** Runs kubectl; a failure throws an error whose message (and `stderr`) carries kubectl's stderr. */
export function kubectl(args: string[], input?: string): string {
  try {
    return execFileSync(kubectlBin(), [`--kubeconfig=${kubeconfigPath()}`, ...args], {
      input,
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (err) {
    const stderr = String((err as { stderr?: string }).stderr ?? '');
    throw Object.assign(new Error(`kubectl ${args.join(' ')} failed: ${stderr.trim()}`), {
      stderr,
    });
  }
}

/** kubectl without blocking the event loop (for helpers that poll while other work runs). */
export async function kubectlJsonAsync<T>(args: string[]): Promise<T> {
  const { stdout } = await promisify(execFile)(
    kubectlBin(),
    [`--kubeconfig=${kubeconfigPath()}`, ...args, '-o', 'json'],
    { encoding: 'utf8', maxBuffer: 64 * 2 ** 20 },
  );
  return JSON.parse(stdout) as T;
}

export function kubectlJson<T>(args: string[]): T {
  return JSON.parse(kubectl([...args, '-o', 'json']));
}

export interface PodView {
  name: string;
  ip: string;
  ready: boolean;
  pid: number | undefined;
  restarts: number;
  uid: string;
}

export function pods(ns: string, selector: string): PodView[] {
  return kubectlJson<V1PodList>(['get', 'pods', '-n', ns, '-l', selector]).items.map((p) => ({
    name: p.metadata!.name!,
    uid: p.metadata!.uid!,
    ip: p.status?.podIP ?? '',
    ready: isPodReady(p),
    pid:
      Number(/^pid:\/\/(\d+)$/.exec(p.status?.containerStatuses?.[0]?.containerID ?? '')?.[1]) ||
      undefined,
    restarts: p.status?.containerStatuses?.[0]?.restartCount ?? 0,
  }));
}

export function waitForReadyPods(
  ns: string,
  selector: string,
  count: number,
  timeoutMs = 60_000,
): Promise<PodView[]> {
  return waitFor(
    `${count} ready pods (${selector}) in ${ns}`,
    () => {
      const list = pods(ns, selector).filter((p) => p.ready && !p.name.includes('terminating'));
      return list.length === count ? list : undefined;
    },
    timeoutMs,
    250,
  );
}

/** Runs `argv` inside a pod's container (its mount namespace and root), as `kubectl exec` would. */
export function execInPod(
  pid: number,
  argv: string[],
): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(
    'nsenter',
    ['--target', String(pid), '--mount', '--root', '--wd', '--', ...argv],
    { encoding: 'utf8', timeout: 10_000 },
  );
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
