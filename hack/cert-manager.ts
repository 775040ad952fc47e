/**
 * cert-manager's own CustomResourceDefinitions, for tests of `spec.redis.tls.issuerRef`: taken
 * from its Go module at a pinned release (fetched once by the Go toolchain into its module
 * cache), so the operator's Certificate meets the real schema on the API server.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

const MODULE = 'github.com/cert-manager/cert-manager';
const VERSION = 'v1.21.2';

/** The path of cert-manager's Certificate CRD. */
export function certificateCrd(): string {
  let out: string;
  try {
    out = execFileSync('go', ['mod', 'download', '-json', `${MODULE}@${VERSION}`], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (err) {
    throw new Error(
      `cert-manager's CRDs come from its Go module ${MODULE}@${VERSION}: install Go ≥ 1.26 and let it reach the module proxy (${(err as Error).message})`,
    );
  }
  const { Dir } = JSON.parse(out) as { Dir: string };
  return join(Dir, 'deploy', 'crds', 'cert-manager.io_certificates.yaml');
}
