/**
 * Reconciles one CacheCluster: applies everything it owns (server-side apply), removes what it
 * no longer wants, carries out the next step its Redis Cluster needs, and writes the status.
 * Level-triggered and idempotent: it reads the world each time and never trusts a cache it
 * did not just read (the informer's objects are cloned, never changed).
 */
import type { V1Deployment, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import type { Logger } from '../../lib/log.ts';
import { isPodReady } from '../../lib/pods.ts';
import {
  type CacheCluster,
  type CacheClusterSpec,
  type MigrationStatus,
  withDefaults,
} from '../api/types.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { Connections } from '../redis/connections.ts';
import { formCluster } from '../redis/create.ts';
import { healCluster } from '../redis/heal.ts';
import { type ClusterView, observe } from '../redis/observe.ts';
import { planShards } from '../redis/plan-create.ts';
import { addShard, type ReshardOptions, rebalance, removeShard } from '../redis/reshard.ts';
import { desiredObjects } from '../resources/desired.ts';
import {
  componentSelector,
  LABEL_PROXY,
  LABEL_SHARD,
  labelSelector,
  REDIS_PORT,
} from '../resources/names.ts';
import type { EventRecorder } from './events.ts';
import { type Handover, handOverLeavingMasters } from './handover.ts';
import { apply, applyStatus, isNotFound, type Kube } from './kube.ts';
import {
  nextRedisStep,
  nodesByPod,
  type PodRef,
  type RedisStep,
  shardMaster,
} from './redis-plan.ts';
import { adminToken, redisPassword } from './secrets.ts';
import { buildStatus, clusterStateOk, type ProxyReadiness } from './status.ts';

export interface ReconcilerOptions {
  kube: Kube;
  log: Logger;
  metrics: OperatorMetrics;
  events: EventRecorder;
  /** The image proxies run unless they name one (the operator's own). */
  image: string;
  redisTimeoutMs: number;
  /** The informer's copy of a CacheCluster (never modified here). */
  lookup: (key: string) => CacheCluster | undefined;
}

export interface Outcome {
  /** Reconcile again after this long (something is still in progress). */
  requeueAfterMs?: number;
}

const STEP_TIMEOUT_MS = 120_000;
const PROGRESS_WRITE_MS = 1000;

export class Reconciler {
  readonly #o: ReconcilerOptions;

  constructor(options: ReconcilerOptions) {
    this.#o = options;
  }

  async reconcile(key: string): Promise<Outcome> {
    const cached = this.#o.lookup(key);
    // Gone, or going: everything it owns goes with it (owner references).
    if (!cached || cached.metadata.deletionTimestamp) return {};
    const cc = structuredClone(cached);
    const spec = withDefaults(cc.spec);
    const log = this.#o.log.child({ cachecluster: key });

    const password = spec.redis.auth.enabled
      ? await redisPassword(this.#o.kube, cc, spec)
      : undefined;
    const conns = new Connections({ password, timeoutMs: this.#o.redisTimeoutMs });
    try {
      const { apps } = this.#o.kube;
      const { namespace } = cc.metadata;
      const [sets, deployments] = await Promise.all([
        apps.listNamespacedStatefulSet({ namespace, labelSelector: selectorOf(cc, 'redis') }),
        apps.listNamespacedDeployment({ namespace, labelSelector: selectorOf(cc, 'proxy') }),
      ]);
      const allPods = await this.#redisPods(cc, sets.items);
      let view = await observe(conns, addrs(allPods));
      // First, before anything slower: masters whose pods are going away hand over.
      const handovers = await handOverLeavingMasters(conns, allPods, view);
      for (const h of handovers)
        await this.#o.events.record(
          cc,
          'Normal',
          'HandedOver',
          `${h.from} is going away: ${h.to} took over its slots (CLUSTER FAILOVER, ${h.ms} ms)`,
        );
      if (handovers.length > 0) view = await observe(conns, addrs(allPods));
      // Shards beyond the spec stay while they still hold slots (a scale-in drains them first).
      const nodes = nodesByPod(allPods, view);
      let keep = spec.redis.shards;
      for (const p of allPods)
        if (p.shard >= keep && shardMaster(allPods, nodes, p.shard)) keep = p.shard + 1;

      await this.#applyOwned(cc, spec, keep, password);
      await this.#prune(cc, spec, keep, sets.items, deployments.items);

      const pods = allPods.filter((p) => p.shard < keep);
      const wanted = { shards: spec.redis.shards, podsPerShard: 1 + spec.redis.replicasPerShard };
      let step = nextRedisStep(pods, view, wanted);
      if (step.kind !== 'wait' && step.kind !== 'settled') {
        await this.#carryOut(cc, step, conns, pods, log);
        view = await observe(conns, addrs(pods));
        step = nextRedisStep(pods, view, wanted);
      }
      const proxies = proxyReadiness(spec, deployments.items);
      await this.#writeStatus(cc, spec, pods, keep, view, step, proxies, handovers);
      if (step.kind === 'settled') return {};
      return { requeueAfterMs: step.kind === 'wait' ? 2000 : 250 };
    } finally {
      conns.close();
    }
  }

  async #redisPods(cc: CacheCluster, sets: V1StatefulSet[]): Promise<PodRef[]> {
    const list = await this.#o.kube.core.listNamespacedPod({
      namespace: cc.metadata.namespace,
      labelSelector: selectorOf(cc, 'redis'),
    });
    // The revision each shard's pods should run (OnDelete: the operator restarts them).
    const revision = new Map(
      sets.map((s) => [s.metadata?.labels?.[LABEL_SHARD], s.status?.updateRevision]),
    );
    return list.items.map((pod) => {
      const name = pod.metadata!.name!;
      const terminating = pod.metadata?.deletionTimestamp != null;
      const ip = pod.status?.podIP;
      return {
        name,
        shard: Number(pod.metadata?.labels?.[LABEL_SHARD]),
        ordinal: Number(name.slice(name.lastIndexOf('-') + 1)),
        addr: ip ? `${ip}:${REDIS_PORT}` : undefined,
        ready: !terminating && isPodReady(pod),
        terminating,
        outdated: isOutdated(pod, revision.get(pod.metadata?.labels?.[LABEL_SHARD])),
      };
    });
  }

  async #applyOwned(
    cc: CacheCluster,
    spec: CacheClusterSpec,
    shards: number,
    password: string | undefined,
  ): Promise<void> {
    const { kube, image } = this.#o;
    const objects = desiredObjects(cc, {
      spec,
      shards,
      password,
      adminToken: await adminToken(kube, cc),
      placement: { zones: await this.#zones() },
      proxyImage: image,
    });
    for (const obj of objects) await apply(kube, obj);
  }

  /** Distinct zones among the nodes (what the anti-affinity can spread a shard over). */
  async #zones(): Promise<number> {
    const nodes = await this.#o.kube.core.listNode();
    const zones = new Set(
      nodes.items.map((n) => n.metadata?.labels?.['topology.kubernetes.io/zone']).filter(Boolean),
    );
    return zones.size;
  }

  /** Deletes drained shards and proxies the spec no longer names (only objects this CacheCluster owns). */
  async #prune(
    cc: CacheCluster,
    spec: CacheClusterSpec,
    keep: number,
    sets: V1StatefulSet[],
    deployments: V1Deployment[],
  ): Promise<void> {
    const { apps, core, policy } = this.#o.kube;
    const namespace = cc.metadata.namespace;
    const owned = (o: { metadata?: { ownerReferences?: { uid: string }[] } }) =>
      o.metadata?.ownerReferences?.some((r) => r.uid === cc.metadata.uid) ?? false;
    const ignoreGone = (err: unknown) => {
      if (!isNotFound(err)) throw err;
    };

    for (const sts of sets.filter(owned)) {
      const shard = Number(sts.metadata?.labels?.[LABEL_SHARD]);
      if (!(shard >= keep)) continue;
      const name = sts.metadata!.name!;
      await apps.deleteNamespacedStatefulSet({ name, namespace }).catch(ignoreGone);
      await policy.deleteNamespacedPodDisruptionBudget({ name, namespace }).catch(ignoreGone);
      await this.#o.events.record(cc, 'Normal', 'ShardRemoved', `${name} was drained and deleted`);
    }
    const proxies = new Set(spec.proxies.map((p) => p.name));
    for (const d of deployments.filter(owned)) {
      if (proxies.has(d.metadata?.labels?.[LABEL_PROXY] ?? '')) continue;
      const name = d.metadata!.name!;
      await apps.deleteNamespacedDeployment({ name, namespace }).catch(ignoreGone);
      await core.deleteNamespacedService({ name, namespace }).catch(ignoreGone);
      await this.#o.events.record(cc, 'Normal', 'ProxyRemoved', `${name} is no longer in the spec`);
    }
  }

  /** Carries out one step (a migration writes its own progress to status.migration). */
  async #carryOut(
    cc: CacheCluster,
    step: RedisStep,
    conns: Connections,
    pods: PodRef[],
    log: Logger,
  ): Promise<void> {
    const { events } = this.#o;
    const seeds = addrs(pods);
    const say = (line: string) => log.info(line);
    // MIGRATE authenticates to the target node with the cluster's password.
    const password = conns.opts.password;
    const opts = { timeoutMs: STEP_TIMEOUT_MS, log: say, password };
    switch (step.kind) {
      case 'bootstrap': {
        await events.record(cc, 'Normal', 'Bootstrapping', `forming ${step.shards.length} shards`);
        await formCluster(conns, planShards(step.shards), opts);
        await events.record(
          cc,
          'Normal',
          'Bootstrapped',
          `${step.shards.length} shards serve all 16384 slots`,
        );
        return;
      }
      case 'heal': {
        const healed = await healCluster(conns, seeds, { ...opts, forget: step.forget });
        if (healed.met > 0 || healed.forgotten.length > 0)
          await events.record(
            cc,
            'Normal',
            'Healed',
            `re-introduced nodes (${healed.met} MEETs), forgot ${healed.forgotten.length} dead nodes`,
          );
        return;
      }
      case 'attach': {
        for (const r of step.replicas) {
          await conns.call(r.addr, 'CLUSTER', 'REPLICATE', r.masterId);
          await events.record(
            cc,
            'Normal',
            'ReplicaAttached',
            `${r.pod} replicates its shard's master`,
          );
        }
        return;
      }
      case 'forget': {
        const live = (await observe(conns, seeds)).reports;
        for (const n of step.nodes) {
          for (const r of live.filter((x) => x.id !== n.id))
            await conns.call(r.addr, 'CLUSTER', 'FORGET', n.id).catch(() => undefined);
          if ((await conns.call<number>(n.addr, 'DBSIZE').catch(() => -1)) === 0)
            await conns.call(n.addr, 'CLUSTER', 'RESET', 'SOFT').catch(() => undefined);
        }
        await events.record(
          cc,
          'Normal',
          'NodesForgotten',
          `forgot ${step.nodes.map((n) => n.addr).join(', ')}`,
        );
        return;
      }
      case 'add-shards': {
        const [seed] = seeds;
        for (const s of step.shards) {
          await addShard(
            conns,
            seed!,
            { master: s.master, replicas: s.replicas },
            { ...opts, rebalance: false },
          );
          await events.record(cc, 'Normal', 'ShardAdded', `shard ${s.shard} joined the cluster`);
        }
        return this.#migrate(cc, { state: 'ScalingOut', toShard: step.shards.at(-1)!.shard }, (o) =>
          rebalance(conns, seeds, { ...o, password }),
        );
      }
      case 'rebalance':
        return this.#migrate(cc, { state: 'Rebalancing' }, (o) =>
          rebalance(conns, seeds, { ...o, password }),
        );
      case 'drain':
        return this.#migrate(cc, { state: 'Draining', fromShard: step.shard }, (o) =>
          removeShard(conns, seeds[0]!, step.master, { ...o, password }),
        );
      case 'restart': {
        // A master's pod hands over during its preStop (the next reconcile sees it leaving).
        await this.#o.kube.core.deleteNamespacedPod({
          name: step.pod,
          namespace: cc.metadata.namespace,
        });
        await events.record(
          cc,
          'Normal',
          'RollingUpdate',
          `restarting ${step.pod}${step.master ? ' (a master: its replica takes over first)' : ''} for the new revision`,
        );
        return;
      }
      case 'wait':
      case 'settled':
        return;
    }
  }

  /** Runs a slot migration, keeping status.migration current and counting what moved. */
  async #migrate(
    cc: CacheCluster,
    base: MigrationStatus,
    run: (
      opts: ReshardOptions,
    ) => Promise<{ slotsMoved: number; keysMoved: number; seconds: number }>,
  ): Promise<void> {
    const { events, metrics, kube } = this.#o;
    const key = `${cc.metadata.namespace}/${cc.metadata.name}`;
    let migration: MigrationStatus = { ...base, slotsDone: 0, slotsTotal: 0 };
    let lastWrite = 0;
    let counted = { slots: 0, keys: 0 };
    const write = () =>
      applyStatus(kube, cc.metadata.namespace, cc.metadata.name, { ...cc.status, migration }).catch(
        () => undefined,
      );
    await events.record(
      cc,
      'Normal',
      'MigrationStarted',
      `${base.state}: moving slots with their keys`,
    );
    const result = await run({
      timeoutMs: STEP_TIMEOUT_MS,
      log: (line) => this.#o.log.info({ cachecluster: key }, line),
      onProgress: (p) => {
        migration = { ...migration, slotsDone: p.slotsDone, slotsTotal: p.slotsTotal };
        metrics.slotsMigrated.labels(key).inc(p.slotsDone - counted.slots);
        metrics.keysMigrated.labels(key).inc(p.keysMoved - counted.keys);
        counted = { slots: p.slotsDone, keys: p.keysMoved };
        if (Date.now() - lastWrite >= PROGRESS_WRITE_MS) {
          lastWrite = Date.now();
          void write();
        }
      },
    });
    await events.record(
      cc,
      'Normal',
      'MigrationFinished',
      `${base.state}: ${result.slotsMoved} slots and ${result.keysMoved} keys moved in ${result.seconds.toFixed(1)} s`,
    );
  }

  async #writeStatus(
    cc: CacheCluster,
    spec: CacheClusterSpec,
    pods: PodRef[],
    shards: number,
    view: ClusterView,
    step: RedisStep,
    proxies: ProxyReadiness[],
    handovers: Handover[],
  ): Promise<void> {
    const { kube, metrics, events } = this.#o;
    const planned = new Set(handovers.map((h) => h.to));
    const key = `${cc.metadata.namespace}/${cc.metadata.name}`;
    const status = buildStatus({
      cc,
      spec,
      pods,
      shards,
      view,
      step,
      proxies,
      now: new Date(),
    });
    // A shard whose master moved to another pod failed over (Redis did it, or a handover).
    for (const s of status.shards ?? []) {
      const before = cc.status?.shards?.find((x) => x.name === s.name)?.master;
      if (before && s.master && before !== s.master) {
        metrics.failovers.labels(key).inc();
        // A planned handover has its own Normal event already.
        if (!planned.has(s.master))
          await events.record(
            cc,
            'Warning',
            'FailedOver',
            `${s.name}: ${s.master} took over from ${before}`,
          );
      }
    }
    metrics.clusterState.labels(key).set(clusterStateOk(view) ? 1 : 0);
    metrics.readyShards.labels(key).set(status.readyShards ?? 0);
    await applyStatus(kube, cc.metadata.namespace, cc.metadata.name, status);
  }
}

/** Ready pods of each spec proxy, from its Deployment. */
function proxyReadiness(spec: CacheClusterSpec, deployments: V1Deployment[]): ProxyReadiness[] {
  return spec.proxies.map((p) => {
    const d = deployments.find((x) => x.metadata?.labels?.[LABEL_PROXY] === p.name);
    return {
      name: p.name,
      region: p.region,
      replicas: p.replicas,
      readyReplicas: d?.status?.readyReplicas ?? 0,
    };
  });
}

const selectorOf = (cc: CacheCluster, component: string) =>
  labelSelector(componentSelector(cc, component));

function isOutdated(pod: V1Pod, updateRevision: string | undefined): boolean {
  const current = pod.metadata?.labels?.['controller-revision-hash'];
  return updateRevision !== undefined && current !== undefined && current !== updateRevision;
}

function addrs(pods: PodRef[]): string[] {
  return pods.flatMap((p) => (p.addr ? [p.addr] : []));
}
