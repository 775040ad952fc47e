/**
 * Runs a locally built image (hack/build-image.sh) under runc, the OCI runtime a kubelet's
 * containerd drives, with the spec from oci-spec.ts. The image is unpacked once by buildah
 * (`buildah from` + `buildah mount`) and its root shared read-only by every container run from
 * it. Root only, like the build.
 */
import {
  type ChildProcess,
  execFile,
  execFileSync,
  type StdioOptions,
  spawn,
} from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO } from '../local-cluster/layout.ts';
import { type ContainerRun, type ImageRunConfig, parseImageUser, runtimeSpec } from './oci-spec.ts';

export const DEV_IMAGE = 'localhost/tiercache:dev';

const buildah = (...args: string[]) => execFileSync('buildah', args, { encoding: 'utf8' }).trim();

/** Builds the image from the Dockerfile (stand-ins and layers cached in buildah's store). */
export function buildImage(tag = DEV_IMAGE): string {
  return execFileSync('bash', [join(REPO, 'hack', 'build-image.sh'), tag], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** The image's uncompressed size as `buildah images` reports it ("252 MB"). */
export function imageSize(image = DEV_IMAGE): string {
  const [info] = JSON.parse(buildah('images', '--json', image)) as { size: string }[];
  if (!info) throw new Error(`image ${image} is not in buildah's store`);
  return info.size;
}

export function imageRunConfig(image: string): ImageRunConfig & { cmd: string[] } {
  const inspected = JSON.parse(buildah('inspect', '--type', 'image', image)) as {
    OCIv1: {
      config?: {
        Entrypoint?: string[];
        Cmd?: string[];
        Env?: string[];
        WorkingDir?: string;
        User?: string;
      };
    };
  };
  const config = inspected.OCIv1.config ?? {};
  return {
    entrypoint: config.Entrypoint ?? [],
    cmd: config.Cmd ?? [],
    env: config.Env ?? [],
    workingDir: config.WorkingDir ?? '/',
    // An image without USER runs as root; the chart would refuse it (runAsNonRoot).
    user: parseImageUser(config.User || '0'),
  };
}

export interface MountedImage {
  image: string;
  rootfs: string;
  config: ImageRunConfig & { cmd: string[] };
  close(): void;
}

/**
 * Unpacks IMAGE into a buildah working container whose root the containers share. A NAME
 * replaces the working container a killed process may have left under it.
 */
export function mountImage(image = DEV_IMAGE, name?: string): MountedImage {
  if (name) {
    try {
      execFileSync('buildah', ['rm', name], { stdio: 'ignore' });
    } catch {}
  }
  const container = buildah(
    'from',
    '--pull=never',
    '--quiet',
    ...(name ? ['--name', name] : []),
    image,
  );
  try {
    const rootfs = buildah('mount', container);
    return {
      image,
      rootfs,
      config: imageRunConfig(image),
      close: () => {
        buildah('umount', container);
        buildah('rm', container);
      },
    };
  } catch (error) {
    buildah('rm', container);
    throw error;
  }
}

export interface ContainerExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunningContainer {
  id: string;
  process: ChildProcess;
  /** Everything the container wrote to stdout and stderr so far. */
  output(): string;
  exited: Promise<ContainerExit>;
  /** SIGKILLs the container's processes (its pid namespace), then removes its state. */
  stop(): Promise<ContainerExit>;
}

export type RunOptions = Omit<ContainerRun, 'rootfs' | 'image'>;

let sequence = 0;

/**
 * Starts `runc run` for RUN from a bundle of its own. runc forwards the signals it gets to the
 * container's process, all but SIGKILL: when runc ends, however it ended, the container is
 * deleted (--force kills what is left in it) and the bundle removed. Container ids start with
 * idPrefix, so a sweep can find what a killed process left running.
 */
export function spawnContainer(
  mounted: MountedImage,
  run: RunOptions,
  stdio: StdioOptions,
  idPrefix = 'tiercache-run-',
): { id: string; child: ChildProcess } {
  const id = `${idPrefix}${process.pid}-${++sequence}`;
  const bundle = mkdtempSync(join(tmpdir(), 'tiercache-oci-'));
  // The image's CMD applies only when neither command nor args are given, as in a pod.
  const args = run.args.length || run.command ? run.args : mounted.config.cmd;
  const spec = runtimeSpec({ ...run, args, rootfs: mounted.rootfs, image: mounted.config });
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
  const child = spawn('runc', ['run', '--bundle', bundle, id], { stdio });
  child.once('exit', () => {
    execFile('runc', ['delete', '--force', id], () =>
      rmSync(bundle, { recursive: true, force: true }),
    );
  });
  return { id, child };
}

export function startContainer(mounted: MountedImage, run: RunOptions): RunningContainer {
  const { id, child } = spawnContainer(mounted, run, ['ignore', 'pipe', 'pipe']);
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
  const exited = new Promise<ContainerExit>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  return {
    id,
    process: child,
    output: () => output,
    exited,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          execFileSync('runc', ['kill', id, 'KILL'], { stdio: 'ignore' });
        } catch {
          child.kill('SIGKILL'); // not created yet, or already gone: end runc itself
        }
      }
      return exited;
    },
  };
}

/** Runs a container to its end, as `docker run --rm` does; killed after timeoutMs. */
export async function runContainer(
  mounted: MountedImage,
  run: RunOptions,
  timeoutMs = 60_000,
): Promise<ContainerExit & { output: string }> {
  const container = startContainer(mounted, run);
  const timer = setTimeout(() => void container.stop(), timeoutMs);
  try {
    const exit = await container.exited;
    return { ...exit, output: container.output() };
  } finally {
    clearTimeout(timer);
  }
}

/** Kills and deletes the runc containers whose ids start with PREFIX (a killed runner's). */
export function removeContainers(prefix: string): string[] {
  let listed: { id: string }[] = [];
  try {
    listed =
      JSON.parse(execFileSync('runc', ['list', '--format', 'json'], { encoding: 'utf8' })) ?? [];
  } catch {
    return []; // no runc, or nothing ever ran
  }
  const ids = listed.map((c) => c.id).filter((id) => id.startsWith(prefix));
  for (const id of ids) execFileSync('runc', ['delete', '--force', id], { stdio: 'ignore' });
  return ids;
}
