/**
 * E2E_IMAGE_RUNTIME=oci: the tiercache image's containers run from the image hack/build-image.sh
 * built (localhost/tiercache:dev) under runc — its files, its Node, its user, a read-only root
 * and no capabilities — instead of as this checkout's CLI, so the e2e suites exercise the
 * image users run. The pod's volumes, /etc/hosts and /etc/resolv.conf are bound in; the network
 * is the machine's, as for every pod here (the process binds its pod IP, given as HOST).
 * Exec probes and exec preStop hooks are not supported for these containers (tiercache's pods
 * use HTTP probes and sleep hooks).
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { ConfigError } from '../../../lib/errors.ts';
import { DEV_IMAGE, type MountedImage, mountImage, spawnContainer } from '../../image/oci-run.ts';
import type { Mount } from './sandbox.ts';

export type ImageRuntime = 'checkout' | 'oci';

/** The runc ids of pod containers, and the buildah working container holding their root. */
export const POD_CONTAINER_PREFIX = 'tiercache-pod-';
const WORKING_CONTAINER = 'tiercache-pod-runner';

export function imageRuntime(env: NodeJS.ProcessEnv = process.env): ImageRuntime {
  const value = env.E2E_IMAGE_RUNTIME || 'checkout';
  if (value === 'checkout' || value === 'oci') return value;
  throw new ConfigError('E2E_IMAGE_RUNTIME', `must be checkout or oci, got '${value}'`);
}

let mounted: MountedImage | undefined;

/** The image, unpacked once for every container the runner starts from it. */
function tiercacheImage(): MountedImage {
  mounted ??= mountImage(DEV_IMAGE, WORKING_CONTAINER);
  return mounted;
}

export function closeTiercacheImage(): void {
  mounted?.close();
  mounted = undefined;
}

export interface ImageContainerSpec {
  pod: V1Pod;
  container: V1Container;
  /** A directory of this container's own, for the files bound into it. */
  dir: string;
  mounts: Mount[];
  files: Record<string, string>;
  /** The container's environment, references already resolved; HOST is added. */
  env: Record<string, string>;
  /** Command and args with $(VAR) references expanded. */
  command: string[] | undefined;
  args: string[];
  podIp: string;
  logFile: string;
}

export function startInImage(spec: ImageContainerSpec): ChildProcess {
  const image = tiercacheImage();
  const files = Object.entries(spec.files).map(([destination, content], i) => {
    const source = join(spec.dir, `file-${i}`);
    writeFileSync(source, content);
    return { source, destination };
  });
  const podSecurity = spec.pod.spec?.securityContext;
  const security = spec.container.securityContext;
  const uid = security?.runAsUser ?? podSecurity?.runAsUser ?? image.config.user.uid;
  const gid = security?.runAsGroup ?? podSecurity?.runAsGroup ?? image.config.user.gid;
  // `tiercache …` as a command means the image's own entrypoint.
  const command = spec.command?.[0]?.endsWith('tiercache') ? undefined : spec.command;
  const args = spec.command && !command ? [...spec.command.slice(1), ...spec.args] : spec.args;
  mkdirSync(spec.dir, { recursive: true });
  const log = openSync(spec.logFile, 'a');
  const { child } = spawnContainer(
    image,
    {
      ...(command?.length ? { command } : {}),
      args,
      env: [...Object.entries(spec.env).map(([k, v]) => `${k}=${v}`), `HOST=${spec.podIp}`],
      mounts: [
        ...spec.mounts.map((m) => ({
          source: m.source,
          destination: m.target,
          readOnly: m.readOnly,
        })),
        ...files,
      ],
      user: { uid, gid },
      ...(spec.container.workingDir ? { workingDir: spec.container.workingDir } : {}),
      hostname: spec.pod.spec?.hostname ?? spec.pod.metadata?.name ?? 'pod',
    },
    ['ignore', log, log],
    POD_CONTAINER_PREFIX,
  );
  closeSync(log); // runc holds its own copy
  return child;
}
