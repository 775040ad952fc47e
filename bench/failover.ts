/**
 * Crash-failover benchmark on the local control plane: a CacheCluster (3 × 1, persistence off,
 * nodeTimeoutMs 5000) with a writer on one shard's keys; that shard's master process is killed
 * (SIGKILL) and the longest pause between two acknowledged writes is the write gap. First with
 * the operator running (it sees the container down in the pod status and promotes the replica
 * at once), then with the operator scaled to zero (Redis's own failover: node-timeout plus an
 * election), side by side in one run. Target: operator gap ≤ 1.5 s.
 *
 *   npm run bench:failover      (BENCH_ROUNDS=3)
 */
import { clusterDown } from '../hack/local-cluster/down.ts';
import { isAlive, recorded } from '../hack/local-cluster/processes.ts';
import { clusterUp } from '../hack/local-cluster/up.ts';
import { E2ECacheCluster } from '../test/helpers/e2e-cachecluster.ts';
import { createCacheCluster, installOperator, kubectl, removeAll } from '../test/helpers/kube.ts';
import { waitFor } from '../test/helpers/wait.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const NS = `bench-failover-${process.pid}`;
const OPERATOR_NS = `bench-operator-${process.pid}`;
const RELEASE = `bf${process.pid}`;
const cc = new E2ECacheCluster(NS);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const said = (gap: number | undefined) =>
  gap === undefined ? `writes had not resumed after ${GIVE_UP_MS / 1000} s` : `${gap} ms`;
/** Median and max of the rounds that recovered, and how many did not. */
function summary(rounds: (number | undefined)[]) {
  const ok = rounds.filter((g): g is number => g !== undefined);
  return {
    medianMs: median(ok) ?? null,
    maxMs: ok.length > 0 ? Math.max(...ok) : null,
    notRecovered: rounds.length - ok.length,
    rounds: rounds.map((g) => g ?? null),
  };
}

const GIVE_UP_MS = 30_000;

/**
 * Kills shard `shard`'s master under a writer; returns the longest write gap (ms), or
 * undefined when writes to the shard had not resumed after GIVE_UP_MS.
 */
async function killedMasterGap(
  shard: number,
  recovered: () => Promise<void>,
): Promise<number | undefined> {
  const status = cc.get().status!.shards![shard]!;
  const keys = await cc.keysInSlots(status.slots, 20);
  const writer = cc.startPauseWriter(keys);
  await waitFor(
    'the writer to write',
    async () => (await cc.missing([keys[0]!])).length === 0,
    30_000,
    50,
  );
  cc.crash(status.master);
  await recovered();
  const resumed = await waitFor(
    'writes to the shard to succeed again',
    () => cc.withClient(async (c) => (await c.set(keys[0]!, 'probe')) === 'OK').catch(() => false),
    GIVE_UP_MS,
    100,
  ).then(
    () => true,
    () => false,
  );
  const gap = (await writer.stop()).longestMs;
  return resumed ? gap : undefined;
}

const startedHere = !recorded().some((p) => isAlive(p.pid));
await clusterUp();
try {
  installOperator(RELEASE, OPERATOR_NS);
  createCacheCluster(NS, {
    redis: { shards: 3, replicasPerShard: 1, maxMemory: '64Mi' },
    proxies: [],
  });
  await cc.waitReadyWithReplicas();

  const operator: (number | undefined)[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    operator.push(
      await killedMasterGap(i % 3, async () => {
        await cc.waitReadyWithReplicas();
        await cc.waitHealthy();
      }),
    );
    console.log(`operator round ${i + 1}: longest write gap ${said(operator.at(-1))}`);
  }

  // Redis alone: no operator to promote the replica or to re-attach the restarted node, so
  // each round uses another shard. Without persistence the restarted node answers at the old
  // address as a new node: the cluster flags the old master noaddr, which Redis never marks
  // failed, so its own failover may never come (the figure says so).
  kubectl(['scale', 'deployment', '-n', OPERATOR_NS, '--all', '--replicas=0']);
  await waitFor(
    'the operator to stop',
    () => kubectl(['get', 'pods', '-n', OPERATOR_NS, '-o', 'name']).trim() === '',
    60_000,
    500,
  );
  const native: (number | undefined)[] = [];
  for (let i = 0; i < Math.min(ROUNDS, 3); i++) {
    native.push(await killedMasterGap(i, async () => {}));
    console.log(`Redis alone round ${i + 1}: longest write gap ${said(native.at(-1))}`);
  }

  console.log(
    JSON.stringify({
      operatorGap: summary(operator),
      redisAloneGap: summary(native),
      target: 'operator gap ≤ 1500 ms',
    }),
  );
} finally {
  removeAll(RELEASE, OPERATOR_NS, [NS]);
  await clusterDown(startedHere);
}
