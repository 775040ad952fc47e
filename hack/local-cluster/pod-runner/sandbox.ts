/**
 * Runs one container's process the way a container runtime would, with what this machine
 * has: a private mount namespace (unshare) whose root is an overlay of the machine's own
 * root, so the process sees its volumes at their mount paths and its own /etc/hosts and
 * /etc/resolv.conf while the machine's /etc and /data stay untouched. Network isolation is
 * not emulated: the process binds its pod's loopback IP instead.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, openSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

export interface SandboxSpec {
  /** A directory of this container's own: overlay upper/work dirs and the merged root live here. */
  dir: string;
  mounts: Mount[];
  /** Files placed into the container's root (e.g. /etc/hosts). */
  files: Record<string, string>;
  workingDir: string;
  argv: string[];
  env: Record<string, string>;
  logFile: string;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

export function startSandboxed(spec: SandboxSpec): ChildProcess {
  const upper = join(spec.dir, 'upper');
  const work = join(spec.dir, 'work');
  const root = join(spec.dir, 'root');
  for (const d of [upper, work, root]) mkdirSync(d, { recursive: true });
  for (const [path, content] of Object.entries(spec.files)) {
    mkdirSync(dirname(join(upper, path)), { recursive: true });
    writeFileSync(join(upper, path), content);
  }
  const script = [
    'set -e',
    `mount -t overlay overlay -o ${q(`lowerdir=/,upperdir=${upper},workdir=${work}`)} ${q(root)}`,
    ...['proc', 'dev', 'sys'].map((d) => `mount --rbind /${d} ${q(join(root, d))}`),
    ...spec.mounts.flatMap((m) => [
      `mkdir -p ${q(join(root, m.target))}`,
      `mount --bind ${q(m.source)} ${q(join(root, m.target))}`,
      ...(m.readOnly ? [`mount -o remount,bind,ro ${q(join(root, m.target))}`] : []),
    ]),
    `cd ${q(root)}`,
    `exec chroot ${q(root)} /bin/sh -c ${q(`cd ${q(spec.workingDir)} && exec "$@"`)} -- ${spec.argv.map(q).join(' ')}`,
  ].join('\n');
  const log = openSync(spec.logFile, 'a');
  // unshare execs sh, sh execs chroot, chroot execs the command: one pid throughout, so
  // signals sent to it reach the container's process.
  return spawn('unshare', ['-m', '--propagation', 'private', '/bin/sh', '-c', script], {
    stdio: ['ignore', log, log],
    env: spec.env,
  });
}
