/**
 * Runs once before all suites: makes sure the real servers the tests need are installed.
 * As root it installs what is missing with apt-get; otherwise it fails saying what to install.
 */
import { tryInstallDebianPackage } from '../../lib/packages.ts';

export function ensureDebianPackage(binary: string, pkg: string): void {
  if (!tryInstallDebianPackage(binary, pkg)) {
    throw new Error(
      `${binary} is required by the tests: install it with 'sudo apt-get install -y ${pkg}'`,
    );
  }
}

export default function setup(): void {
  ensureDebianPackage('redis-server', 'redis-server');
  ensureDebianPackage('redis-cli', 'redis-tools');
  ensureDebianPackage('chromium', 'chromium'); // the dashboard tests
}
