/**
 * Global setup of the e2e suites: with E2E_KUBECONFIG (kind, hack/kind-e2e.sh) they use that
 * cluster and nothing is started. Otherwise the local control plane is started (its binaries
 * built first when they are not cached — that first build takes about ten minutes on 2 cores)
 * and stopped again at the end whatever the tests did. State the suite created is removed;
 * a cluster that was already running is reused and its state kept.
 */
import { buildImage } from '../../hack/image/oci-run.ts';
import { clusterDown } from '../../hack/local-cluster/down.ts';
import { imageRuntime } from '../../hack/local-cluster/pod-runner/oci.ts';
import { isAlive, recorded } from '../../hack/local-cluster/processes.ts';
import { clusterUp } from '../../hack/local-cluster/up.ts';
import { ensureDebianPackage } from './global-setup.ts';

let startedHere = false;

const external = () => process.env.E2E_KUBECONFIG !== undefined;

export async function setup(): Promise<void> {
  if (external()) return;
  ensureDebianPackage('redis-server', 'redis-server');
  ensureDebianPackage('openssl', 'openssl');
  ensureDebianPackage('nsenter', 'util-linux');
  // The operator and proxy pods run from the image users run (built from this checkout),
  // unless E2E_IMAGE_RUNTIME=checkout asks for the checkout's CLI.
  process.env.E2E_IMAGE_RUNTIME ||= 'oci';
  if (imageRuntime() === 'oci') buildImage();
  startedHere = !recorded().some((p) => isAlive(p.pid));
  await clusterUp();
}

export async function teardown(): Promise<void> {
  if (external()) return;
  await clusterDown(startedHere);
}
