/**
 * The control plane's binaries, built with the Go toolchain from their Go modules at the
 * versions pinned in tools/<group>/go.mod, once, into a cache outside the repository
 * (~/.cache/tiercache, or TIERCACHE_CACHE). Later runs reuse them.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const TOOLS = fileURLToPath(new URL('./tools/', import.meta.url));

interface Group {
  /** Directory under tools/ with the go.mod that pins the version. */
  dir: string;
  /** The module whose `require` line gives the version. */
  module: string;
  binaries: Record<string, string>;
  ldflags?: (version: string) => string[];
}

const k8sVersionFlags = (v: string) => {
  const [major, minor] = v.replace(/^v/, '').split('.');
  return ['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version'].flatMap((pkg) => [
    `-X ${pkg}.gitVersion=${v}`,
    `-X ${pkg}.gitMajor=${major}`,
    `-X ${pkg}.gitMinor=${minor}`,
    `-X ${pkg}.gitTreeState=clean`,
  ]);
};

export const GROUPS: Group[] = [
  {
    dir: 'kubernetes',
    module: 'k8s.io/kubernetes',
    binaries: {
      'kube-apiserver': 'k8s.io/kubernetes/cmd/kube-apiserver',
      'kube-controller-manager': 'k8s.io/kubernetes/cmd/kube-controller-manager',
      'kube-scheduler': 'k8s.io/kubernetes/cmd/kube-scheduler',
      kubectl: 'k8s.io/kubernetes/cmd/kubectl',
    },
    ldflags: k8sVersionFlags,
  },
  {
    dir: 'etcd',
    module: 'go.etcd.io/etcd/server/v3',
    binaries: { etcd: 'go.etcd.io/etcd/server/v3' },
  },
  { dir: 'kwok', module: 'sigs.k8s.io/kwok', binaries: { kwok: 'sigs.k8s.io/kwok/cmd/kwok' } },
  {
    dir: 'helm',
    module: 'helm.sh/helm/v3',
    binaries: { helm: 'helm.sh/helm/v3/cmd/helm' },
    ldflags: (v) => [`-X helm.sh/helm/v3/internal/version.version=${v}`],
  },
];

/** Tools only the benchmarks use, built the same way on first use. */
export const BENCH_GROUPS: Group[] = [
  {
    dir: 'vegeta',
    module: 'github.com/tsenart/vegeta/v12',
    binaries: { vegeta: 'github.com/tsenart/vegeta/v12' },
  },
];

/** promtool, which the alert-rule tests run, built the same way on first use. */
export const RULES_GROUPS: Group[] = [
  {
    dir: 'promtool',
    module: 'github.com/prometheus/prometheus',
    binaries: { promtool: 'github.com/prometheus/prometheus/cmd/promtool' },
  },
];

/** redis_exporter, the Redis pods' optional metrics sidecar, which the pod runner runs for the image `oliver006/redis_exporter`. */
export const EXPORTER_GROUPS: Group[] = [
  {
    dir: 'redis-exporter',
    module: 'github.com/oliver006/redis_exporter',
    binaries: { redis_exporter: 'github.com/oliver006/redis_exporter' },
    ldflags: (v) => [`-X main.BuildVersion=${v}`],
  },
];

/** versitygw, the S3-compatible server (SigV4, a directory behind it) the backup tests store into. */
export const S3_GROUPS: Group[] = [
  {
    dir: 'versitygw',
    module: 'github.com/versity/versitygw',
    binaries: { versitygw: 'github.com/versity/versitygw/cmd/versitygw' },
  },
];

export function cacheRoot(): string {
  return process.env.TIERCACHE_CACHE ?? join(homedir(), '.cache', 'tiercache');
}

export function pinnedVersion(group: Group): string {
  const mod = readFileSync(join(TOOLS, group.dir, 'go.mod'), 'utf8');
  const m = new RegExp(
    `^(?:require\\s+|\\s+)${group.module.replace(/\./g, '\\.')}\\s+(v\\S+)`,
    'm',
  ).exec(mod);
  if (!m) throw new Error(`tools/${group.dir}/go.mod does not require ${group.module}`);
  return m[1]!;
}

export function binDir(group: Group): string {
  return join(cacheRoot(), `${group.dir}-${pinnedVersion(group)}`, 'bin');
}

/** Absolute paths of every binary of `groups` (the control plane's by default), building whatever is missing first. */
export function ensureBinaries(
  groups: Group[] = GROUPS,
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Record<string, string> {
  const paths: Record<string, string> = {};
  for (const group of groups) {
    const dir = binDir(group);
    const missing = Object.keys(group.binaries).filter((b) => !existsSync(join(dir, b)));
    if (missing.length > 0) build(group, dir, missing, log);
    for (const b of Object.keys(group.binaries)) paths[b] = join(dir, b);
  }
  return paths;
}

function build(group: Group, dir: string, names: string[], log: (line: string) => void): void {
  const go = spawnSync('go', ['version'], { encoding: 'utf8' });
  if (go.status !== 0) {
    throw new Error(
      `the Go toolchain is needed to build ${names.join(', ')}: install Go ≥ 1.26 (https://go.dev/dl) and put go on the PATH`,
    );
  }
  const version = pinnedVersion(group);
  mkdirSync(dir, { recursive: true });
  // One scratch directory per process: two test runs building the same binary at once each
  // rename a whole file of their own into place, and the second simply replaces the first.
  const tmp = `${dir}.partial-${process.pid}`;
  mkdirSync(tmp, { recursive: true });
  for (const name of names) {
    const started = Date.now();
    log(
      `building ${name} ${version} with ${go.stdout.trim().replace(/^go version /, '')} (once; the first build of the control plane takes tens of minutes on 2 cores)…`,
    );
    const ldflags = ['-s', '-w', ...(group.ldflags?.(version) ?? [])].join(' ');
    execFileSync(
      'go',
      ['build', '-trimpath', `-ldflags=${ldflags}`, '-o', join(tmp, name), group.binaries[name]!],
      {
        cwd: join(TOOLS, group.dir),
        stdio: ['ignore', 'inherit', 'inherit'],
      },
    );
    // Moved into place only when complete, so an interrupted build is never mistaken for a binary.
    renameSync(join(tmp, name), join(dir, name));
    log(`built ${name} in ${Math.round((Date.now() - started) / 1000)} s`);
  }
  rmSync(tmp, { recursive: true, force: true });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const paths = ensureBinaries();
  for (const [name, path] of Object.entries(paths)) {
    const v = spawnSync(
      path,
      [name === 'etcd' ? '--version' : 'version', ...(name === 'kubectl' ? ['--client'] : [])],
      { encoding: 'utf8' },
    );
    process.stdout.write(`${name.padEnd(24)} ${path}\n${(v.stdout || v.stderr).split('\n')[0]}\n`);
  }
}
