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
  /** A single file (the termination-message file) rather than a directory. */
  file?: boolean;
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
  // Volumes are first bound under /.volumes inside the new root (a path we own), then bound
  // at their mount paths from inside the chroot, so a mount path through a symlink
  // (/var/run → /run) resolves in the container's tree, never in the machine's.
  const staged = spec.mounts.map((m, i) => ({ ...m, stage: `/.volumes/${i}` }));
  const inside = [
    ...staged.flatMap((m) => [
      // A file's mount point is a file (under /dev, the machine's /dev gets that empty file).
      m.file
        ? `mkdir -p "$(dirname ${q(m.target)})" && touch ${q(m.target)}`
        : `mkdir -p ${q(m.target)}`,
      `mount --bind ${q(m.stage)} ${q(m.target)}`,
      ...(m.readOnly ? [`mount -o remount,bind,ro ${q(m.target)}`] : []),
    ]),
    `cd ${q(spec.workingDir)}`,
    'exec "$@"',
  ].join(' && ');
  const script = [
    'set -e',
    `mount -t overlay overlay -o ${q(`lowerdir=/,upperdir=${upper},workdir=${work}`)} ${q(root)}`,
    ...['proc', 'dev', 'sys'].map((d) => `mount --rbind /${d} ${q(join(root, d))}`),
    ...staged.flatMap((m) => [
      m.file
        ? `mkdir -p ${q(join(root, '.volumes'))} && touch ${q(root + m.stage)}`
        : `mkdir -p ${q(root + m.stage)}`,
      `mount --bind ${q(m.source)} ${q(root + m.stage)}`,
    ]),
    `exec chroot ${q(root)} /bin/sh -c ${q(inside)} -- ${spec.argv.map(q).join(' ')}`,
  ].join('\n');
  const log = openSync(spec.logFile, 'a');
  // unshare execs sh, sh execs chroot, chroot execs the command: one pid throughout, so
  // signals sent to it reach the container's process.
  return spawn('unshare', ['-m', '--propagation', 'private', '/bin/sh', '-c', script], {
    stdio: ['ignore', log, log],
    env: spec.env,
  });
}
