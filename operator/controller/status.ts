/**
 * The status of a CacheCluster (pure): per-shard slot map, the addresses proxies use, ready
 * proxies, and the Ready / Progressing / Degraded conditions with the reason a person needs.
 */

import { formatRanges } from '../../lib/redis/topology.ts';
import type {
  CacheCluster,
  CacheClusterSpec,
  CacheClusterStatus,
  Condition,
  ShardStatus,
} from '../api/types.ts';
import { checkCluster } from '../redis/check.ts';
import type { ClusterView } from '../redis/observe.ts';
import { names, podAddress } from '../resources/names.ts';
import { nodesByPod, type PodRef, self, shardMaster } from './cluster-pods.ts';
import { isAuthError } from './errors.ts';
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
  /** Owned objects the API server refused this reconcile: "<Kind> <name>: <why>". */
  applyFailures?: string[];
  /** A password rotation under way: its phase. */
  rotating?: 'introduce' | 'retire';
  now: Date;
}

/** Progressing's reason and message while each step runs. */
const STEP: Record<RedisStep['kind'], { reason: string; message: string }> = {
  wait: { reason: 'Waiting', message: 'waiting' },
  bootstrap: { reason: 'Bootstrapping', message: 'forming the cluster' },
  heal: {
    reason: 'Healing',
    message: 'introducing nodes to each other and forgetting dead ones',
  },
  'add-shards': { reason: 'ScalingOut', message: 'adding shards and moving slots onto them' },
  attach: { reason: 'AttachingReplicas', message: 'attaching replicas to their masters' },
  rebalance: { reason: 'Rebalancing', message: 'moving slots so every master holds its share' },
  fix: { reason: 'FinishingMigrations', message: 'finishing slot migrations left open' },
  drain: { reason: 'ScalingIn', message: 'moving the leaving shard’s slots away' },
  forget: { reason: 'Healing', message: 'forgetting nodes that left' },
  'reassign-slots': {
    reason: 'SlotsLost',
    message: 'giving the slots of a shard with no copy left to its new master',
  },
  'move-master': {
    reason: 'SpreadingMasters',
    message: 'handing a master role to a replica in a less crowded failure domain',
  },
  'replace-pod': {
    reason: 'SpreadingPods',
    message: 're-creating a replica so the pods spread over every failure domain',
  },
  restart: {
    reason: 'RollingUpdate',
    message: 'restarting pods for the new revision, one at a time',
  },
  settled: { reason: 'Settled', message: 'nothing to do' },
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
  const refused = view.unreachable.filter((u) => isAuthError(u.error)).map((u) => u.addr);
  const applyFailures = inputs.applyFailures ?? [];

  let degraded: [boolean, string, string] = [false, 'AsExpected', 'every slot is served'];
  // Nodes that refuse the operator's password look like nodes that are down: say which it is.
  if (refused.length > 0)
    degraded = [
      true,
      'AuthFailed',
      `${refused.length} of ${refused.length + view.reports.length} Redis nodes refuse the operator's password (${refused.join(', ')})`,
    ];
  else if (formed && withoutMaster.length > 0)
    degraded = [true, 'ShardWithoutMaster', `no master serves ${withoutMaster.join(', ')}`];
  else if (formed && uncovered > 0)
    degraded = [true, 'SlotsUncovered', `${uncovered} slots are not served by any node`];
  else if (formed && !clusterOk)
    degraded = [true, 'ClusterStateFail', 'a node reports cluster_state:fail'];
  else if (applyFailures.length > 0)
    degraded = [true, 'ApplyFailed', `could not apply ${applyFailures.join('; ')}`];

  const rotating = step.kind === 'settled' ? inputs.rotating : undefined;
  const progressing = step.kind !== 'settled' || rotating !== undefined;
  const stepMessage = rotating
    ? rotating === 'introduce'
      ? 'teaching every Redis node the new password'
      : 'the proxies roll to the new password; then the nodes forget the old one'
    : step.kind === 'wait'
      ? step.message
      : STEP[step.kind].message;
  const stepReason = rotating
    ? 'RotatingPassword'
    : step.kind === 'wait'
      ? step.reason
      : STEP[step.kind].reason;

  let ready: [boolean, string, string] = [
    true,
    'ClusterReady',
    'every slot is served, every shard has its replicas and every proxy is ready',
  ];
  if (degraded[0] && (refused.length > 0 || applyFailures.length > 0))
    ready = [false, degraded[1], degraded[2]];
  else if (!formed)
    ready = [false, step.kind === 'wait' ? step.reason : 'Bootstrapping', stepMessage];
  else if (degraded[0]) ready = [false, degraded[1], degraded[2]];
  else if (progressing) ready = [false, stepReason, stepMessage];
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
        progressing ? stepReason : 'Settled',
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

/**
 * The status after a reconcile that failed before it could write its own: the previous status
 * with Ready False and Degraded True, reason `reason`, for the current generation, so Ready is
 * never left True for a spec that was not carried out.
 */
export function failedStatus(
  cc: CacheCluster,
  reason: string,
  message: string,
  now: Date,
): CacheClusterStatus {
  const previous = cc.status?.conditions;
  const generation = cc.metadata.generation;
  const progressing = previous?.find((c) => c.type === 'Progressing');
  return {
    ...cc.status,
    observedGeneration: generation,
    conditions: [
      condition(previous, 'Ready', false, reason, message, generation, now),
      condition(
        previous,
        'Progressing',
        true,
        progressing?.status === 'True' ? progressing.reason : 'Retrying',
        progressing?.status === 'True' ? progressing.message : 'retrying after a failure',
        generation,
        now,
      ),
      condition(previous, 'Degraded', true, reason, message, generation, now),
    ],
  };
}
