/**
 * Runs once before all suites: makes sure the real servers the tests need are installed.
 * As root it installs what is missing with apt-get; otherwise it fails saying what to install.
 */
import { execFileSync } from 'node:child_process';

function has(binary: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export function ensureDebianPackage(binary: string, pkg: string): void {
  if (has(binary)) return;
  if (process.getuid?.() !== 0) {
    throw new Error(
      `${binary} is required by the tests: install it with 'sudo apt-get install -y ${pkg}'`,
    );
  }
  process.stderr.write(`installing ${pkg} (for ${binary}) with apt-get…\n`);
  execFileSync(
    'sh',
    ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${pkg}`],
    { stdio: 'inherit' },
  );
  if (!has(binary))
    throw new Error(`apt-get installed ${pkg} but ${binary} is still not on the PATH`);
}

export default function setup(): void {
  ensureDebianPackage('redis-server', 'redis-server');
  ensureDebianPackage('redis-cli', 'redis-tools');
}
