/**
 * The regional proxies' side of an e2e run: the demo upstream as a pod (these machines have
 * no internet), the API key Secrets the sample names, the sample CacheCluster pointed at that
 * upstream, and traffic through both regional proxies that counts what was answered.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadYaml, type V1Pod } from '@kubernetes/client-node';
import { REPO } from '../../hack/local-cluster/layout.ts';
import { isPodReady } from '../../lib/pods.ts';
import type { CacheCluster } from '../../operator/api/types.ts';
import { kubectl, kubectlJsonAsync } from './kube.ts';

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

const COINS = ['btc', 'eth', 'sol', 'xrp', 'ada', 'doge'];

/** What the traffic asks each proxy: everything exists upstream, so only a 200 is right. */
function pathFor(proxy: string, i: number): string {
  if (proxy === 'crypto-eu') return `/api/latest_prices?symbols=${COINS[i % COINS.length]}`;
  return `/3/movie/${((i * 7) % 400) + 1}`;
}

/**
 * Requests through both regional proxies until stopped, like a client behind their Services:
 * each request goes to one of the proxy's Ready pods (the list re-read every second, so a
 * rolling update is followed), and a request whose connection failed is sent once more to
 * another pod, as HTTP clients do for a GET. Counts answers by status, and the retries.
 */
export function startProxyTraffic(ns: string) {
  const names = ['tmdb-apac', 'crypto-eu'];
  const ready = new Map<string, string[]>();
  const refresh = async () => {
    const pods = await kubectlJsonAsync<{ items: V1Pod[] }>([
      'get',
      'pods',
      '-n',
      ns,
      '-l',
      `tiercache.io/proxy in (${names.join(',')})`,
    ]).catch(() => undefined);
    if (!pods) return;
    for (const name of names)
      ready.set(
        name,
        pods.items
          .filter(
            (p) =>
              p.metadata?.labels?.['tiercache.io/proxy'] === name &&
              !p.metadata.deletionTimestamp &&
              isPodReady(p) &&
              p.status?.podIP,
          )
          .map((p) => `http://${p.status!.podIP}:6635`),
      );
  };
  let stopped = false;
  let total = 0;
  let serverErrors = 0;
  let otherErrors = 0;
  /** Requests sent again to another pod after a connection error. */
  let retried = 0;
  /** Answers other than 200 by "<status> <proxy>" (status 0: no answer). */
  const byStatus: Record<string, number> = {};
  const started = refresh();
  const refresher = (async () => {
    await started;
    while (!stopped) {
      await new Promise((r) => setTimeout(r, 1000));
      await refresh();
    }
  })();
  const loops = names.map(async (name, n) => {
    await started;
    for (let i = 0; !stopped; i++) {
      const bases = ready.get(name) ?? [];
      if (bases.length === 0) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      const path = pathFor(name, i + n);
      let res = await fetch(`${bases[i % bases.length]}${path}`).catch(() => undefined);
      if (!res && bases.length > 1) {
        // As HTTP clients do for a GET whose reused connection the server closed meanwhile
        // (a pod shutting down): once more, on another pod.
        retried++;
        res = await fetch(`${bases[(i + 1) % bases.length]}${path}`).catch(() => undefined);
      }
      total++;
      if (!res || res.status >= 500) serverErrors++;
      else if (res.status >= 300) otherErrors++;
      const status = res?.status ?? 0;
      const what = `${status} ${name}`;
      if (status !== 200) byStatus[what] = (byStatus[what] ?? 0) + 1;
      await res?.arrayBuffer();
    }
  });
  return {
    /** Counts so far, without stopping. */
    counts: () => ({ total, serverErrors, otherErrors }),
    async stop() {
      stopped = true;
      await Promise.all([...loops, refresher]);
      return { total, serverErrors, otherErrors, byStatus, retried };
    },
  };
}
