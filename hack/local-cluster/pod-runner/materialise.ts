/**
 * What a container needs besides its command: environment (plain values, fieldRef,
 * secretKeyRef, configMapKeyRef, envFrom) and volumes (ConfigMap, Secret, emptyDir,
 * persistentVolumeClaim, projected service-account token) rendered into directories that
 * the sandbox binds at the container's mount paths.
 */

import { chmodSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Container, V1Pod, V1Volume } from '@kubernetes/client-node';
import { paths } from '../layout.ts';
import type { Mount } from './sandbox.ts';

export interface ClusterReader {
  configMap(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  /** Secret data, base64-decoded. */
  secret(namespace: string, name: string): Promise<Record<string, string> | undefined>;
  token(pod: V1Pod, audiences: string[] | undefined, expirationSeconds: number): Promise<string>;
  caCert(): string;
  apiserver: { host: string; port: string };
}

class MissingReference extends Error {}

function fieldValue(pod: V1Pod, path: string): string {
  const values: Record<string, string | undefined> = {
    'metadata.name': pod.metadata?.name,
    'metadata.namespace': pod.metadata?.namespace,
    'metadata.uid': pod.metadata?.uid,
    'spec.nodeName': pod.spec?.nodeName,
    'spec.serviceAccountName': pod.spec?.serviceAccountName,
    'status.podIP': pod.status?.podIP,
    'status.hostIP': pod.status?.hostIP,
  };
  const m = /^metadata\.(labels|annotations)\['(.+)'\]$/.exec(path);
  if (m) return pod.metadata?.[m[1] as 'labels' | 'annotations']?.[m[2]!] ?? '';
  return values[path] ?? '';
}

export async function containerEnv(
  pod: V1Pod,
  container: V1Container,
  cluster: ClusterReader,
): Promise<Record<string, string>> {
  const ns = pod.metadata!.namespace!;
  const env: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOSTNAME: pod.spec?.hostname ?? pod.metadata!.name!,
    KUBERNETES_SERVICE_HOST: cluster.apiserver.host,
    KUBERNETES_SERVICE_PORT: cluster.apiserver.port,
  };
  for (const from of container.envFrom ?? []) {
    const data = from.configMapRef
      ? await cluster.configMap(ns, from.configMapRef.name!)
      : from.secretRef
        ? await cluster.secret(ns, from.secretRef.name!)
        : undefined;
    for (const [k, v] of Object.entries(data ?? {})) env[(from.prefix ?? '') + k] = v;
  }
  for (const e of container.env ?? []) {
    const src = e.valueFrom;
    if (!src) env[e.name] = e.value ?? '';
    else if (src.fieldRef) env[e.name] = fieldValue(pod, src.fieldRef.fieldPath);
    else if (src.secretKeyRef || src.configMapKeyRef) {
      const ref = (src.secretKeyRef ?? src.configMapKeyRef)!;
      const data = src.secretKeyRef
        ? await cluster.secret(ns, ref.name!)
        : await cluster.configMap(ns, ref.name!);
      const value = data?.[ref.key];
      if (value === undefined && !ref.optional)
        throw new MissingReference(`${e.name}: ${ref.name}/${ref.key} not found`);
      if (value !== undefined) env[e.name] = value;
    }
  }
  return env;
}

/**
 * The directory holds exactly `files`, each replaced atomically (written aside, then renamed),
 * so a refresh never shows a process half a file, and keys gone from the source go too.
 */
function writeAll(dir: string, files: Record<string, string>): void {
  mkdirSync(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    const aside = join(dir, `..${name}.tmp`);
    writeFileSync(aside, content, { mode: 0o644 });
    renameSync(aside, join(dir, name));
  }
  for (const name of readdirSync(dir))
    if (!(name in files)) rmSync(join(dir, name), { force: true });
}

/**
 * Writes the ConfigMap and Secret volumes again from their sources, as a kubelet keeps them
 * current (a Secret that is gone leaves its last contents). Tokens are left alone.
 */
export async function refreshVolumes(
  pod: V1Pod,
  podDir: string,
  cluster: ClusterReader,
): Promise<void> {
  const ns = pod.metadata!.namespace!;
  for (const v of pod.spec?.volumes ?? [])
    if (v.configMap || v.secret)
      await renderVolume(pod, ns, v, podDir, cluster).catch(() => undefined);
}

/** Renders each volume of the pod into a directory; returns the directory per volume name. */
export async function renderVolumes(
  pod: V1Pod,
  podDir: string,
  cluster: ClusterReader,
): Promise<Record<string, string>> {
  const ns = pod.metadata!.namespace!;
  const out: Record<string, string> = {};
  for (const v of pod.spec?.volumes ?? [])
    out[v.name] = await renderVolume(pod, ns, v, podDir, cluster);
  return out;
}

async function renderVolume(
  pod: V1Pod,
  ns: string,
  v: V1Volume,
  podDir: string,
  cluster: ClusterReader,
): Promise<string> {
  const dir = join(podDir, 'volumes', v.name);
  if (v.persistentVolumeClaim) {
    // One directory per claim, outside the pod's own directory: it survives pod replacement.
    const claimDir = join(paths.claims, ns, v.persistentVolumeClaim.claimName);
    mkdirSync(claimDir, { recursive: true });
    // Writable by any user, as Rancher's local-path provisioner makes its volumes: a hostPath
    // volume gets no fsGroup ownership, and pods of non-root images write there too.
    chmodSync(claimDir, 0o777);
    return claimDir;
  }
  if (v.configMap) {
    const data = await cluster.configMap(ns, v.configMap.name!);
    if (!data && !v.configMap.optional)
      throw new MissingReference(`configMap ${v.configMap.name} not found`);
    writeAll(dir, pick(data ?? {}, v.configMap.items));
  } else if (v.secret) {
    const data = await cluster.secret(ns, v.secret.secretName!);
    if (!data && !v.secret.optional)
      throw new MissingReference(`secret ${v.secret.secretName} not found`);
    writeAll(dir, pick(data ?? {}, v.secret.items));
  } else if (v.projected) {
    const files: Record<string, string> = {};
    for (const s of v.projected.sources ?? []) {
      if (s.serviceAccountToken) {
        files[s.serviceAccountToken.path] = await cluster.token(
          pod,
          s.serviceAccountToken.audience ? [s.serviceAccountToken.audience] : undefined,
          s.serviceAccountToken.expirationSeconds ?? 3607,
        );
      }
      if (s.configMap) {
        const data =
          s.configMap.name === 'kube-root-ca.crt'
            ? { 'ca.crt': cluster.caCert() }
            : await cluster.configMap(ns, s.configMap.name!);
        Object.assign(files, pick(data ?? {}, s.configMap.items));
      }
      if (s.secret)
        Object.assign(
          files,
          pick((await cluster.secret(ns, s.secret.name!)) ?? {}, s.secret.items),
        );
      if (s.downwardAPI) {
        for (const item of s.downwardAPI.items ?? [])
          if (item.fieldRef) files[item.path] = fieldValue(pod, item.fieldRef.fieldPath);
      }
    }
    writeAll(dir, files);
  } else {
    mkdirSync(dir, { recursive: true }); // emptyDir, and anything else, as an empty directory
  }
  return dir;
}

function pick(
  data: Record<string, string>,
  items: { key: string; path: string }[] | undefined,
): Record<string, string> {
  if (!items) return data;
  return Object.fromEntries(
    items.filter((i) => data[i.key] !== undefined).map((i) => [i.path, data[i.key]!]),
  );
}

export function containerMounts(
  container: V1Container,
  volumeDirs: Record<string, string>,
): Mount[] {
  return (container.volumeMounts ?? [])
    .filter((m) => volumeDirs[m.name])
    .map((m) => ({
      source: join(volumeDirs[m.name]!, m.subPath ?? ''),
      target: m.mountPath,
      readOnly: m.readOnly ?? false,
    }));
}
