/**
 * The status of a CacheCluster (pure): per-shard slot map, the addresses proxies use, ready
 * proxies, and the Ready / Progressing / Degraded conditions with the reason a person needs.
 */

import type {
  CacheCluster,
  CacheClusterSpec,
  CacheClusterStatus,
  Condition,
  ShardStatus,
} from '../api/types.ts';
import { checkCluster } from '../redis/check.ts';
import type { ClusterView } from '../redis/observe.ts';
import { formatRanges } from '../redis/topology.ts';
import { names, podAddress } from '../resources/names.ts';
import { nodesByPod, type PodRef, self, shardMaster } from './cluster-pods.ts';
import type { RedisStep } from './redis-plan.ts';

export interface ProxyReadiness {
  name: string;
  region: string;
  replicas: number;
  readyReplicas: number;
}

export interface StatusInputs {
  cc: CacheCluster;
  spec: CacheClusterSpec;
  pods: PodRef[];
  shards: number;
  view: ClusterView;
  /** The step this reconcile found (after carrying it out, the next one will see the result). */
  step: RedisStep;
  proxies: ProxyReadiness[];
  now: Date;
}

const STEP_REASON: Record<RedisStep['kind'], string> = {
  wait: 'Waiting',
  bootstrap: 'Bootstrapping',
  heal: 'Healing',
  'add-shards': 'ScalingOut',
  attach: 'AttachingReplicas',
  rebalance: 'Rebalancing',
  fix: 'FinishingMigrations',
  drain: 'ScalingIn',
  forget: 'Healing',
  'reassign-slots': 'SlotsLost',
  'move-master': 'SpreadingMasters',
  'replace-pod': 'SpreadingPods',
  restart: 'RollingUpdate',
  settled: 'Settled',
};

/** Every node answered and reports cluster_state:ok. */
export function clusterStateOk(view: ClusterView): boolean {
  return view.reports.length > 0 && view.reports.every((r) => r.info.cluster_state === 'ok');
}

export function shardStatuses(inputs: StatusInputs): ShardStatus[] {
  const { cc, pods, view } = inputs;
  const nodes = nodesByPod(pods, view);
  const out: ShardStatus[] = [];
  for (let i = 0; i < inputs.shards; i++) {
    const master = shardMaster(pods, nodes, i);
    const replicas = pods.filter((p) => {
      const r = nodes.get(p.name);
      return p.shard === i && r && master && self(r).masterId === master.node.id;
    });
    out.push({
      name: names.shard(cc.metadata.name, i),
      master: master?.pod.name ?? '',
      replicas: replicas.map((p) => p.name).sort(),
      slots: master ? formatRanges(master.node.slots) : '',
      keys: master ? (nodes.get(master.pod.name)?.keys ?? 0) : 0,
    });
  }
  return out;
}

function condition(
  previous: Condition[] | undefined,
  type: Condition['type'],
  status: boolean,
  reason: string,
  message: string,
  generation: number | undefined,
  now: Date,
): Condition {
  const value = status ? 'True' : 'False';
  const before = previous?.find((c) => c.type === type);
  return {
    type,
    status: value,
    ...(generation !== undefined ? { observedGeneration: generation } : {}),
    // The time the status last changed, not the time it was last written.
    lastTransitionTime:
      before && before.status === value ? before.lastTransitionTime : now.toISOString(),
    reason,
    message,
  };
}

export function buildStatus(inputs: StatusInputs): CacheClusterStatus {
  const { cc, spec, step, view, now } = inputs;
  const shards = shardStatuses(inputs);
  const wanted = shards.slice(0, spec.redis.shards);
  const generation = cc.metadata.generation;
  const check = checkCluster(view);
  const uncovered = view.reports.length > 0 ? check.uncovered.length : 16384;
  const clusterOk =
    view.reports.length > 0 && view.reports.every((r) => r.info.cluster_state === 'ok');
  const withoutMaster = wanted.filter((s) => !s.master).map((s) => s.name);
  const replicasShort = wanted
    .filter((s) => s.master && s.replicas.length < spec.redis.replicasPerShard)
    .map((s) => s.name);
  const proxiesShort = inputs.proxies
    .filter((p) => p.readyReplicas < p.replicas)
    .map((p) => p.name);
  const formed = wanted.some((s) => s.master);

  let degraded: [boolean, string, string] = [false, 'AsExpected', 'every slot is served'];
  if (formed && withoutMaster.length > 0)
    degraded = [true, 'ShardWithoutMaster', `no master serves ${withoutMaster.join(', ')}`];
  else if (formed && uncovered > 0)
    degraded = [true, 'SlotsUncovered', `${uncovered} slots are not served by any node`];
  else if (formed && !clusterOk)
    degraded = [true, 'ClusterStateFail', 'a node reports cluster_state:fail'];

  const progressing = step.kind !== 'settled';
  const stepMessage =
    step.kind === 'wait'
      ? step.message
      : progressing
        ? `${STEP_REASON[step.kind].toLowerCase()}`
        : 'nothing to do';

  let ready: [boolean, string, string] = [
    true,
    'ClusterReady',
    'every slot is served, every shard has its replicas and every proxy is ready',
  ];
  if (!formed) ready = [false, step.kind === 'wait' ? step.reason : 'Bootstrapping', stepMessage];
  else if (degraded[0]) ready = [false, degraded[1], degraded[2]];
  else if (progressing)
    ready = [false, step.kind === 'wait' ? step.reason : STEP_REASON[step.kind], stepMessage];
  else if (replicasShort.length > 0)
    ready = [false, 'ReplicasMissing', `${replicasShort.join(', ')} lack replicas`];
  else if (proxiesShort.length > 0)
    ready = [false, 'ProxiesNotReady', `proxies not ready yet: ${proxiesShort.join(', ')}`];

  const previous = cc.status?.conditions;
  return {
    observedGeneration: generation,
    readyShards: wanted.filter((s) => s.master).length,
    conditions: [
      condition(previous, 'Ready', ready[0], ready[1], ready[2], generation, now),
      condition(
        previous,
        'Progressing',
        progressing,
        progressing ? (step.kind === 'wait' ? step.reason : STEP_REASON[step.kind]) : 'Settled',
        stepMessage,
        generation,
        now,
      ),
      condition(previous, 'Degraded', degraded[0], degraded[1], degraded[2], generation, now),
    ],
    shards,
    nodes: inputs.pods
      .filter((p) => p.shard < inputs.shards)
      .map((p) => podAddress(cc, p.shard, p.ordinal)),
    // A migration runs inside one reconcile and writes its own progress; it is over by now.
    migration: { state: 'Idle' },
    proxies: inputs.proxies.map((p) => ({
      name: p.name,
      region: p.region,
      readyReplicas: p.readyReplicas,
    })),
  };
}
