/**
 * The OCI runtime spec (runc's config.json) for running a tiercache image the way the chart's
 * pods run it: as uid/gid 65532, read-only root filesystem, no capabilities, no new
 * privileges, and no writable directory at all (the chart and the operator mount no emptyDir
 * into tiercache containers, so the image must not need one). Pure: the caller writes it and
 * runs `runc run`.
 *
 * Two departures from a kubelet's container, both forced by the machines the tests run on:
 * no `rlimits` (CAP_SYS_RESOURCE is absent there, so runc could not set them) and the host's
 * network namespace (the tests reach servers bound to 127.0.0.0/8; a pod has its own). The
 * pods' RuntimeDefault seccomp profile is left out too: it is the node runtime's, not the image's.
 */

/** What `buildah inspect` says the image runs: its entrypoint, environment, directory, user. */
export interface ImageRunConfig {
  entrypoint: string[];
  env: string[];
  workingDir: string;
  user: { uid: number; gid: number };
}

export interface BindMount {
  source: string;
  destination: string;
  /** Default true: a Secret's or ConfigMap's volume; false for a data volume. */
  readOnly?: boolean;
}

export interface ContainerRun {
  /** Absolute path of the unpacked image (a `buildah mount`), mounted read-only. */
  rootfs: string;
  image: ImageRunConfig;
  /** Replaces the image's entrypoint, as a pod's `command` does. */
  command?: string[];
  /** Arguments after the entrypoint (or command), as a pod's `args` are. */
  args: string[];
  /** NAME=value entries added to (and overriding) the image's environment. */
  env?: string[];
  /** Host files or directories bound into the container (a Secret's volume, say). */
  mounts?: BindMount[];
  /** Overrides the image's user, as a pod's runAsUser/runAsGroup do. */
  user?: { uid: number; gid: number };
  workingDir?: string;
  hostname?: string;
}

const NO_CAPABILITIES = {
  bounding: [],
  effective: [],
  inheritable: [],
  permitted: [],
  ambient: [],
};

/** The image's user field: `65532`, `65532:65532`; names are not resolved (distroless has none to). */
export function parseImageUser(user: string): { uid: number; gid: number } {
  const match = /^(\d+)(?::(\d+))?$/.exec(user.trim());
  if (!match) throw new Error(`image user '${user}' is not numeric uid[:gid]`);
  const uid = Number(match[1]);
  return { uid, gid: match[2] === undefined ? uid : Number(match[2]) };
}

/** Later entries win, as a pod's env overrides its image's. */
export function mergeEnv(base: string[], overrides: string[]): string[] {
  const byName = new Map<string, string>();
  for (const entry of [...base, ...overrides]) byName.set(entry.split('=', 1)[0] ?? entry, entry);
  return [...byName.values()];
}

export function runtimeSpec(run: ContainerRun): Record<string, unknown> {
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: run.user ?? run.image.user,
      args: [...(run.command ?? run.image.entrypoint), ...run.args],
      env: mergeEnv(run.image.env, run.env ?? []),
      cwd: run.workingDir || run.image.workingDir || '/',
      capabilities: NO_CAPABILITIES,
      noNewPrivileges: true,
    },
    root: { path: run.rootfs, readonly: true },
    hostname: run.hostname ?? 'tiercache',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      {
        destination: '/dev',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
      },
      {
        destination: '/dev/pts',
        type: 'devpts',
        source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
      },
      {
        destination: '/dev/shm',
        type: 'tmpfs',
        source: 'shm',
        options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
      },
      {
        destination: '/sys',
        type: 'sysfs',
        source: 'sysfs',
        options: ['nosuid', 'noexec', 'nodev', 'ro'],
      },
      ...(run.mounts ?? []).map((mount) => ({
        destination: mount.destination,
        type: 'bind',
        source: mount.source,
        options: ['rbind', mount.readOnly === false ? 'rw' : 'ro', 'nosuid', 'nodev'],
      })),
    ],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }],
      maskedPaths: [
        '/proc/acpi',
        '/proc/kcore',
        '/proc/keys',
        '/proc/latency_stats',
        '/proc/timer_list',
        '/proc/sched_debug',
        '/sys/firmware',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}
