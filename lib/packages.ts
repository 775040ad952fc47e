/**
 * Programs this project runs (redis-server, openssl, …): is one on the PATH, and installing
 * it from Debian's packages when running as root — what tests and the local stack need on a
 * fresh machine.
 */
import { execFileSync } from 'node:child_process';

export function hasBinary(binary: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Installs `pkg` with apt-get when running as root; true when `binary` is then available. */
export function tryInstallDebianPackage(binary: string, pkg: string): boolean {
  if (hasBinary(binary)) return true;
  if (process.getuid?.() !== 0 || !hasBinary('apt-get')) return false;
  process.stderr.write(`installing ${pkg} (for ${binary}) with apt-get…\n`);
  try {
    execFileSync(
      'sh',
      ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg}`],
      { stdio: 'inherit' },
    );
  } catch {
    return false;
  }
  return hasBinary(binary);
}
