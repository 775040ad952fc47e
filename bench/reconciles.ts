/**
 * Reconcile load at steady state, on the local control plane: a CacheCluster of 20 shards × 1
 * replica (persistence off), first idle, then busy (a writer running all along, so key counts
 * change all the time). For each window: reconciles per minute (the leader's
 * controller_runtime_reconcile_total) and status writes per minute (changes of the
 * CacheCluster's resourceVersion). A quiet operator reconciles about twice a minute (the 30 s
 * resync) and writes status about once a minute (key counts are held for a minute).
 *
 *   npm run bench:reconciles      (BENCH_SHARDS=20, BENCH_WINDOW_S=120)
 */
import { clusterDown } from '../hack/local-cluster/down.ts';
import { isAlive, recorded } from '../hack/local-cluster/processes.ts';
import { clusterUp } from '../hack/local-cluster/up.ts';
import { E2ECacheCluster } from '../test/helpers/e2e-cachecluster.ts';
import {
  createCacheCluster,
  installOperator,
  kubectlJson,
  leaseHolder,
  removeAll,
} from '../test/helpers/kube.ts';

const SHARDS = Number(process.env.BENCH_SHARDS ?? 20);
const WINDOW_S = Number(process.env.BENCH_WINDOW_S ?? 120);
const NS = `bench-reconciles-${process.pid}`;
const OPERATOR_NS = `bench-operator-${process.pid}`;
const RELEASE = `br${process.pid}`;
const cc = new E2ECacheCluster(NS);

/** The leader's reconcile count, from its /metrics. */
async function reconciles(): Promise<number> {
  const leader = leaseHolder(OPERATOR_NS)!;
  const ip = kubectlJson<{ status: { podIP: string } }>(['get', 'pod', leader, '-n', OPERATOR_NS])
    .status.podIP;
  const text = await (await fetch(`http://${ip}:8080/metrics`)).text();
  let n = 0;
  for (const line of text.split('\n'))
    if (
      line.startsWith('controller_runtime_reconcile_total{') &&
      line.includes('controller="cachecluster"')
    )
      n += Number(line.split(' ').at(-1));
  return n;
}

/** Reconciles and status writes per minute over one window. */
async function window(): Promise<{ reconcilesPerMin: number; statusWritesPerMin: number }> {
  const before = await reconciles();
  let versions = 0;
  let last = cc.get().metadata.resourceVersion;
  const ends = Date.now() + WINDOW_S * 1000;
  while (Date.now() < ends) {
    await new Promise((r) => setTimeout(r, 500));
    const now = cc.get().metadata.resourceVersion;
    if (now !== last) versions += 1;
    last = now;
  }
  const perMin = (n: number) => Math.round((n / WINDOW_S) * 60 * 10) / 10;
  return {
    reconcilesPerMin: perMin((await reconciles()) - before),
    statusWritesPerMin: perMin(versions),
  };
}

const startedHere = !recorded().some((p) => isAlive(p.pid));
await clusterUp();
try {
  installOperator(RELEASE, OPERATOR_NS);
  createCacheCluster(NS, {
    redis: { shards: SHARDS, replicasPerShard: 1, maxMemory: '32Mi' },
    proxies: [],
  });
  const started = Date.now();
  await cc.waitReadyWithReplicas(SHARDS, 1, 600_000);
  console.log(
    `${SHARDS} shards × 1 replica Ready in ${((Date.now() - started) / 1000).toFixed(0)} s`,
  );
  const idle = await window();
  console.log(`idle: ${JSON.stringify(idle)}`);
  const writer = cc.startAckedWriter('busy');
  const busy = await window();
  const w = await writer.stop();
  console.log(`busy (${w.successes} writes): ${JSON.stringify(busy)}`);
  console.log(
    JSON.stringify({ shards: SHARDS, windowS: WINDOW_S, idle, busy, writes: w.successes }),
  );
} finally {
  removeAll(RELEASE, OPERATOR_NS, [NS]);
  await clusterDown(startedHere);
}
