/**
 * Chaos soak on the local control plane: a 3 × 1 CacheCluster (persistence off, the default)
 * with its two regional proxies under load and a key writer, and a random disruption every
 * 20–40 s: a Redis pod deleted, a Redis pod force-deleted, a Redis process killed, the leading
 * operator killed, a shard added or removed. After each, it waits until the CacheCluster is
 * Ready for its generation and Redis shows every slot served, and prints the kind, the time to
 * Ready, the longest pause of a sequential writer, acknowledged writes lost and proxy non-2xx;
 * then the totals. One disruption at a time, each after the last has healed: a copy of every
 * key always survives, so the expected loss is zero.
 *
 *   npm run soak        (SOAK_MINUTES=10)
 */
import { clusterDown } from '../hack/local-cluster/down.ts';
import { isAlive, recorded } from '../hack/local-cluster/processes.ts';
import { clusterUp } from '../hack/local-cluster/up.ts';
import { withDefaults } from '../operator/api/types.ts';
import { E2ECacheCluster } from '../test/helpers/e2e-cachecluster.ts';
import {
  prepareNamespace,
  sampleCacheCluster,
  startProxyTraffic,
} from '../test/helpers/e2e-proxies.ts';
import { installOperator, kubectl, leaseHolder, removeAll } from '../test/helpers/kube.ts';
import { waitFor } from '../test/helpers/wait.ts';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 10);
const NS = `soak-${process.pid}`;
const OPERATOR_NS = `soak-operator-${process.pid}`;
const RELEASE = `soak${process.pid}`;
const cc = new E2ECacheCluster(NS);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

type Kind = 'pod delete' | 'pod force-delete' | 'process kill' | 'leader kill' | 'shards ±1';
const KINDS: Kind[] = [
  'pod delete',
  'pod force-delete',
  'process kill',
  'leader kill',
  'shards ±1',
];

let shards = 3;

const leader = () => leaseHolder(OPERATOR_NS);
const podOf = (name: string) => cc.redisPods().find((p) => p.metadata?.name === name);

/**
 * Carries out one disruption; returns what it hit and a test that it took effect (so a
 * Ready status from before it is not taken for the recovery).
 */
function disrupt(kind: Kind): { target: string; tookEffect: () => boolean } {
  const target = pick(cc.redisPods()).metadata!.name!;
  const uid = podOf(target)?.metadata?.uid;
  const replaced = () => {
    const now = podOf(target)?.metadata?.uid;
    return now !== undefined && now !== uid;
  };
  switch (kind) {
    case 'pod delete':
      kubectl(['delete', 'pod', target, '-n', NS, '--wait=false']);
      return { target, tookEffect: replaced };
    case 'pod force-delete':
      cc.forceDelete(target);
      return { target, tookEffect: replaced };
    case 'process kill': {
      const restarts = podOf(target)?.status?.containerStatuses?.[0]?.restartCount ?? 0;
      cc.crash(target);
      return {
        target,
        tookEffect: () =>
          (podOf(target)?.status?.containerStatuses?.[0]?.restartCount ?? 0) > restarts,
      };
    }
    case 'leader kill': {
      const was = leader()!;
      kubectl(['delete', 'pod', was, '-n', OPERATOR_NS, '--grace-period=0', '--force']);
      return { target: was, tookEffect: () => (leader() ?? was) !== was };
    }
    case 'shards ±1': {
      shards = shards === 3 ? 4 : 3;
      kubectl(['scale', 'cc/cache', '-n', NS, `--replicas=${shards}`]);
      // The generation moved: Ready is believed only for the new one.
      return { target: `${shards} shards`, tookEffect: () => true };
    }
  }
}

interface Row {
  kind: Kind;
  target: string;
  readyS: number;
  longestWriteGapMs: number;
  ackedLost: number;
  proxyNon2xx: number;
}

const startedHere = !recorded().some((p) => isAlive(p.pid));
await clusterUp();
const rows: Row[] = [];
try {
  installOperator(RELEASE, OPERATOR_NS);
  const upstream = prepareNamespace(NS);
  const sample = sampleCacheCluster(upstream);
  // The CRD's defaults, persistence off: a hand-written copy would drift from them.
  sample.spec.redis.persistence = {
    ...withDefaults(sample.spec).redis.persistence,
    enabled: false,
  };
  kubectl(['apply', '-n', NS, '-f', '-'], JSON.stringify(sample));
  await cc.waitReadyWithReplicas();
  await cc.waitHealthy();
  const traffic = startProxyTraffic(NS);
  const ends = Date.now() + MINUTES * 60_000;
  for (let n = 0; Date.now() < ends; n++) {
    await sleep(20_000 + Math.random() * 20_000);
    const kind = pick(KINDS);
    const writer = cc.startAckedWriter(`soak:${n}`);
    await waitFor(
      'the writer',
      async () => (await cc.missing([`soak:${n}:10`])).length === 0,
      30_000,
      50,
    );
    const before = traffic.counts();
    const started = Date.now();
    const { target, tookEffect } = disrupt(kind);
    await waitFor(`${kind} of ${target} to take effect`, tookEffect, 120_000, 100);
    await cc.waitReadyWithReplicas(shards, 1, 300_000);
    await cc.waitHealthy({}, 120_000);
    const readyS = (Date.now() - started) / 1000;
    const w = await writer.stop();
    const lost = await cc.missing(
      w.acked.map((i) => `soak:${n}:${i}`),
      w.acked.map(String),
    );
    const after = traffic.counts();
    const row: Row = {
      kind,
      target,
      readyS,
      longestWriteGapMs: w.longestMs,
      ackedLost: lost.length,
      proxyNon2xx:
        after.serverErrors + after.otherErrors - before.serverErrors - before.otherErrors,
    };
    rows.push(row);
    console.log(JSON.stringify(row));
  }
  const served = await traffic.stop();
  console.log(
    JSON.stringify({
      minutes: MINUTES,
      disruptions: rows.length,
      byKind: Object.fromEntries(KINDS.map((k) => [k, rows.filter((r) => r.kind === k).length])),
      longestReadyS: Math.max(...rows.map((r) => r.readyS)),
      longestWriteGapMs: Math.max(...rows.map((r) => r.longestWriteGapMs)),
      ackedLost: rows.reduce((a, r) => a + r.ackedLost, 0),
      proxyRequests: served.total,
      proxyNon2xx: served.serverErrors + served.otherErrors,
      proxyNon2xxByStatus: served.byStatus,
    }),
  );
} finally {
  removeAll(RELEASE, OPERATOR_NS, [NS]);
  await clusterDown(startedHere);
}
