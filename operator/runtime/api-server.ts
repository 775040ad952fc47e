/**
 * The operator's first call: the API server's /version, retried until a deadline. Without it
 * an operator with an unreachable or misconfigured API server would log watch errors forever
 * and never exit; exiting lets the kubelet restart it with back-off and shows why.
 */
import { VersionApi } from '@kubernetes/client-node';
import { TiercacheError } from '../../lib/errors.ts';
import { withTimeout } from '../../lib/timeout.ts';
import { describeError } from '../controller/errors.ts';
import type { Kube } from './kube.ts';

const RETRY_EVERY_MS = 1000;
const CALL_TIMEOUT_MS = 5000;

/** fetch's own message ("fetch failed") hides the socket error in its cause. */
function reason(err: unknown): string {
  const cause = (err as { cause?: { message?: string } }).cause?.message;
  return cause ? `${describeError(err)} (${cause})` : describeError(err);
}

/** Resolves with the server's version, or throws KUBE_API_UNAVAILABLE naming the server and the last error. */
export async function waitForApiServer(kube: Kube, timeoutSeconds: number): Promise<string> {
  const server = kube.config.getCurrentCluster()?.server ?? '(no server in the kubeconfig)';
  const versions = kube.config.makeApiClient(VersionApi);
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    try {
      const info = await withTimeout(versions.getCode(), CALL_TIMEOUT_MS, `GET ${server}/version`);
      return info.gitVersion;
    } catch (err) {
      if (Date.now() + RETRY_EVERY_MS >= deadline)
        throw new TiercacheError(
          'KUBE_API_UNAVAILABLE',
          `cannot reach the Kubernetes API server at ${server} within ${timeoutSeconds} s (API_SERVER_TIMEOUT): ${reason(err)}`,
          { server },
          err,
        );
      await new Promise((r) => setTimeout(r, RETRY_EVERY_MS));
    }
  }
}
