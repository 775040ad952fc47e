/**
 * The regional proxies' side of an e2e run: the demo upstream as a pod (these machines have
 * no internet), the API key Secrets the sample names, the sample CacheCluster pointed at that
 * upstream, and traffic through both regional proxies that counts what was answered.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadYaml, type V1Pod } from '@kubernetes/client-node';
import { REPO } from '../../hack/local-cluster/layout.ts';
import type { CacheCluster } from '../../operator/api/types.ts';
import { kubectl, kubectlJson } from './kube.ts';

export const API_KEY = 'e2e-api-key';
const IMAGE = process.env.E2E_IMAGE ?? 'tiercache:0.1.0';

function fakeUpstream() {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'fake-upstream' },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'fake-upstream' } },
      template: {
        metadata: { labels: { app: 'fake-upstream' } },
        spec: {
          containers: [
            {
              name: 'upstream',
              image: IMAGE,
              args: [
                'demo-upstream',
                '--port',
                '8000',
                '--host',
                '$(POD_IP)',
                '--api-key',
                API_KEY,
              ],
              env: [{ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } }],
              readinessProbe: { tcpSocket: { port: 8000 }, periodSeconds: 1 },
            },
          ],
        },
      },
    },
  };
}

/** The namespace with the API key Secrets and the demo upstream; returns the upstream's URL. */
export function prepareNamespace(ns: string): string {
  kubectl(['create', 'namespace', ns]);
  for (const secret of ['tmdb', 'coingecko'])
    kubectl(['create', 'secret', 'generic', secret, '-n', ns, `--from-literal=apiKey=${API_KEY}`]);
  kubectl(['apply', '-n', ns, '-f', '-'], JSON.stringify(fakeUpstream()));
  kubectl(['expose', 'deployment', 'fake-upstream', '-n', ns, '--port=8000']);
  return `http://fake-upstream.${ns}.svc:8000`;
}

/** crds/samples/cachecluster.yaml with its proxies sent to `upstream`. */
export function sampleCacheCluster(upstream: string): CacheCluster {
  const sample = loadYaml<CacheCluster>(
    readFileSync(join(REPO, 'crds', 'samples', 'cachecluster.yaml'), 'utf8'),
  );
  for (const p of sample.spec.proxies)
    p.env = {
      ...p.env,
      TMDB_API_URL: upstream,
      TMDB_IMAGE_URL: upstream,
      CRYPTO_API_URL: `${upstream}/api/v3`,
    };
  return sample;
}

/** Requests through both regional proxies until stopped; counts answers by status. */
export function startProxyTraffic(ns: string) {
  const urls = ['tmdb-apac', 'crypto-eu'].map((name) => {
    const pod = kubectlJson<{ items: V1Pod[] }>([
      'get',
      'pods',
      '-n',
      ns,
      '-l',
      `tiercache.io/proxy=${name}`,
    ]).items.find((p) => p.status?.podIP)!;
    return `http://${pod.status!.podIP}:6635`;
  });
  let stopped = false;
  let total = 0;
  let serverErrors = 0;
  let otherErrors = 0;
  /** Answers other than 200 by status (0: no answer). */
  const byStatus: Record<number, number> = {};
  const loops = urls.map(async (base, n) => {
    for (let i = 0; !stopped; i++) {
      // Movie ids 1–400: all exist upstream, so anything but a 200 is the proxy's doing.
      const res = await fetch(`${base}/3/movie/${((i * 7 + n) % 400) + 1}`).catch(() => undefined);
      total++;
      if (!res || res.status >= 500) serverErrors++;
      else if (res.status >= 300) otherErrors++;
      const status = res?.status ?? 0;
      if (status !== 200) byStatus[status] = (byStatus[status] ?? 0) + 1;
      await res?.arrayBuffer();
    }
  });
  return {
    /** Counts so far, without stopping. */
    counts: () => ({ total, serverErrors, otherErrors }),
    async stop() {
      stopped = true;
      await Promise.all(loops);
      return { total, serverErrors, otherErrors, byStatus };
    },
  };
}
