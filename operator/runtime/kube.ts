/**
 * The Kubernetes API clients the operator uses, and the few call shapes it needs: server-side
 * apply with the operator's field manager, status apply of a CacheCluster, not-found checks.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  AppsV1Api,
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  type KubernetesObject,
  KubernetesObjectApi,
  PatchStrategy,
  PolicyV1Api,
  setHeaderOptions,
} from '@kubernetes/client-node';
import { ConfigError } from '../../lib/errors.ts';
import { GROUP, PLURAL, VERSION } from '../api/types.ts';
import { FIELD_MANAGER } from '../resources/names.ts';

export interface Kube {
  config: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  batch: BatchV1Api;
  policy: PolicyV1Api;
  custom: CustomObjectsApi;
  coordination: CoordinationV1Api;
  objects: KubernetesObjectApi;
}

/** In a pod: its ServiceAccount; elsewhere: KUBECONFIG or ~/.kube/config. */
export function connect(config = defaultConfig()): Kube {
  return {
    config,
    core: config.makeApiClient(CoreV1Api),
    apps: config.makeApiClient(AppsV1Api),
    batch: config.makeApiClient(BatchV1Api),
    policy: config.makeApiClient(PolicyV1Api),
    custom: config.makeApiClient(CustomObjectsApi),
    coordination: config.makeApiClient(CoordinationV1Api),
    objects: KubernetesObjectApi.makeApiClient(config),
  };
}

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

function defaultConfig(env = process.env): KubeConfig {
  const config = new KubeConfig();
  // In a pod its ServiceAccount wins over any kubeconfig file the image may carry.
  if (env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN)) {
    config.loadFromCluster();
    return config;
  }
  // With neither, client-node would quietly aim at http://localhost:8080 and every call
  // would fail forever; say what is missing instead.
  if (!env.KUBECONFIG && !existsSync(join(homedir(), '.kube', 'config')))
    throw new ConfigError(
      'KUBECONFIG',
      'no Kubernetes API to talk to: not in a pod (no KUBERNETES_SERVICE_HOST and ServiceAccount token) and no kubeconfig (KUBECONFIG unset, ~/.kube/config missing)',
    );
  config.loadFromDefault();
  return config;
}

export function isNotFound(err: unknown): boolean {
  return (err as { code?: number }).code === 404;
}

export function isConflict(err: unknown): boolean {
  return (err as { code?: number }).code === 409;
}

/** Server-side apply: the object as this operator wants it; fields others own are left alone. */
export function apply<T extends KubernetesObject>(kube: Kube, obj: T): Promise<T> {
  return kube.objects.patch(
    obj,
    undefined,
    undefined,
    FIELD_MANAGER,
    true,
    PatchStrategy.ServerSideApply,
  );
}

/** Applies the status subresource of a CacheCluster (fields left out are dropped). */
export async function applyStatus(
  kube: Kube,
  namespace: string,
  name: string,
  status: object,
): Promise<void> {
  await kube.custom.patchNamespacedCustomObjectStatus(
    {
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace,
      name,
      body: {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: 'CacheCluster',
        metadata: { name, namespace },
        status,
      },
      fieldManager: FIELD_MANAGER,
      force: true,
    },
    setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply),
  );
}
