/**
 * Reconciles one CacheCluster: applies everything it owns (server-side apply), removes what it
 * no longer wants, carries out the next step its Redis Cluster needs, and writes the status.
 * Level-triggered and idempotent: it reads the world each time and never trusts a cache it
 * did not just read (the informer's objects are cloned, never changed).
 */
import { createHash } from 'node:crypto';
import type { V1Deployment, V1Node, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
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
import {
  addShard,
  fixCluster,
  type ReshardOptions,
  rebalance,
  removeShard,
} from '../redis/reshard.ts';
import { formatRanges } from '../redis/topology.ts';
import { desiredObjects } from '../resources/desired.ts';
import {
  componentSelector,
  LABEL_PROXY,
  LABEL_SHARD,
  labelSelector,
  names,
  REDIS_PORT,
} from '../resources/names.ts';
import type { PodRef } from './cluster-pods.ts';
import type { EventRecorder } from './events.ts';
import { admit, failOverTo, promote, reassignSlots } from './failover.ts';
import { promotions, shardsToKeep, toAdmit } from './failure-plan.ts';
import { handOverLeavingMasters } from './handover.ts';
import { apply, applyStatus, isNotFound, type Kube } from './kube.ts';
import { nextRedisStep, type RedisStep } from './redis-plan.ts';
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
/** Owned objects are applied again at least this often even when nothing changed (drift). */
const REAPPLY_EVERY_MS = 30_000;
/** Pods re-created to even out placement: at most one this often (each costs a full sync). */
const REPLACE_EVERY_MS = 20_000;
/** A warning about the same pod is repeated at most this often (reconciles run every ~250 ms). */
const WARN_EVERY_MS = 60_000;

export class Reconciler {
  readonly #o: ReconcilerOptions;
  readonly #warned = new Map<string, number>();
  /** What was last applied for each CacheCluster (a digest of the objects) and when. */
  readonly #applied = new Map<string, { digest: string; at: number }>();
  /** When a pod was last re-created to even out placement, per CacheCluster. */
  readonly #replacedAt = new Map<string, number>();
  /** The master pod of each shard as this operator last wrote it (the informer's copy may lag). */
  readonly #masters = new Map<string, Map<string, string>>();

  constructor(options: ReconcilerOptions) {
    this.#o = options;
  }

  async reconcile(key: string): Promise<Outcome> {
    const cached = this.#o.lookup(key);
    // Gone, or going: everything it owns goes with it (owner references).
    if (!cached || cached.metadata.deletionTimestamp) {
      this.#masters.delete(key);
      this.#applied.delete(key);
      return {};
    }
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
      const nodeList = (await this.#o.kube.core.listNode()).items;
      const zones = zonesByNode(nodeList);
      const allPods = await this.#redisPods(cc, sets.items, zones);
      let view = await observe(conns, addrs(allPods));
      // First, before anything slower: masters that are going away hand over, replicas of
      // masters that are down take over, and legitimate nodes may serve replication.
      // `tookOver`: pods made masters by the operator this reconcile (they have their Events).
      const { tookOver, changed } = await this.#failovers(cc, conns, allPods, view);
      if (changed) view = await observe(conns, addrs(allPods));
      // Shards beyond the spec stay until they provably own nothing (a scale-in drains them first).
      const keep = shardsToKeep(allPods, view, spec.redis.shards);

      await this.#applyOwned(cc, spec, keep, password, new Set(zones.values()).size);
      await this.#prune(cc, spec, keep, sets.items, deployments.items);

      const pods = allPods.filter((p) => p.shard < keep);
      const wanted = {
        shards: spec.redis.shards,
        podsPerShard: 1 + spec.redis.replicasPerShard,
        domains: schedulableDomains(nodeList),
        mayReplacePods: Date.now() - (this.#replacedAt.get(key) ?? 0) > REPLACE_EVERY_MS,
      };
      let step = nextRedisStep(pods, view, wanted);
      if (step.kind !== 'wait' && step.kind !== 'settled') {
        if (step.kind === 'move-master') tookOver.add(step.pod);
        if (step.kind === 'reassign-slots') tookOver.add(step.master.pod);
        await this.#carryOut(cc, step, conns, pods, log);
        view = await observe(conns, addrs(pods));
        step = nextRedisStep(pods, view, wanted);
      }
      const proxies = proxyReadiness(spec, deployments.items);
      await this.#writeStatus(cc, spec, pods, keep, view, step, proxies, tookOver);
      if (step.kind === 'settled') return {};
      return { requeueAfterMs: step.kind === 'wait' ? 2000 : 250 };
    } finally {
      conns.close();
    }
  }

  /**
   * Handovers of leaving masters, promotions of replicas whose master is down, admission of
   * quarantined nodes; Events for each. `changed` when the cluster's roles changed.
   */
  async #failovers(
    cc: CacheCluster,
    conns: Connections,
    pods: PodRef[],
    view: ClusterView,
  ): Promise<{ tookOver: Set<string>; changed: boolean }> {
    const { events } = this.#o;
    const key = `${cc.metadata.namespace}/${cc.metadata.name}`;
    const handovers = await handOverLeavingMasters(conns, pods, view);
    for (const h of handovers.done)
      await events.record(
        cc,
        'Normal',
        'HandedOver',
        `${h.from} is going away: ${h.to} took over its slots (CLUSTER FAILOVER, ${h.ms} ms)`,
      );
    for (const pod of handovers.unprotected)
      if (this.#firstWarning(`${key}/${pod}/unprotected`))
        await events.record(
          cc,
          'Warning',
          'NoInSyncReplica',
          `${pod} is going away as a master with no in-sync replica: its shard's slots are unserved until it is back`,
        );
    const promoted = await promote(conns, promotions(pods, view), (p, err) =>
      this.#o.log.warn(
        { cachecluster: key, err: err.message },
        `${p.to.pod} could not take over from ${p.from.pod ?? p.from.addr}`,
      ),
    );
    for (const p of promoted) {
      const how =
        p.mode === 'TAKEOVER'
          ? 'CLUSTER FAILOVER TAKEOVER: no majority of masters is up to hold an election'
          : `CLUSTER FAILOVER ${p.mode}`;
      await events.record(
        cc,
        'Warning',
        'FailedOver',
        `${names.shard(cc.metadata.name, p.shard)}: ${p.to.pod} took over from ${p.from.pod ?? p.from.addr} (${p.why}; ${how}, ${p.ms} ms)`,
      );
    }
    const admitting = toAdmit(view);
    if (admitting.length > 0) await admit(conns, admitting);
    return {
      tookOver: new Set([...handovers.done.map((h) => h.to), ...promoted.map((p) => p.to.pod)]),
      changed: handovers.done.length + promoted.length + admitting.length > 0,
    };
  }

  /** True once per pod and reason per minute: warnings are not repeated every reconcile. */
  #firstWarning(key: string): boolean {
    const now = Date.now();
    for (const [k, at] of this.#warned) if (now - at > WARN_EVERY_MS) this.#warned.delete(k);
    if (this.#warned.has(key)) return false;
    this.#warned.set(key, now);
    return true;
  }

  async #redisPods(
    cc: CacheCluster,
    sets: V1StatefulSet[],
    zones: Map<string, string>,
  ): Promise<PodRef[]> {
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
      const node = pod.spec?.nodeName;
      const redis = pod.status?.containerStatuses?.find((c) => c.name === 'redis');
      return {
        name,
        shard: Number(pod.metadata?.labels?.[LABEL_SHARD]),
        ordinal: Number(name.slice(name.lastIndexOf('-') + 1)),
        addr: ip ? `${ip}:${REDIS_PORT}` : undefined,
        ready: !terminating && isPodReady(pod),
        running: redis?.state?.running !== undefined,
        terminating,
        outdated: isOutdated(pod, revision.get(pod.metadata?.labels?.[LABEL_SHARD])),
        domain: node ? (zones.get(node) ?? node) : undefined,
      };
    });
  }

  async #applyOwned(
    cc: CacheCluster,
    spec: CacheClusterSpec,
    shards: number,
    password: string | undefined,
    zoneCount: number,
  ): Promise<void> {
    const { kube, image } = this.#o;
    const objects = desiredObjects(cc, {
      spec,
      shards,
      password,
      adminToken: await adminToken(kube, cc),
      placement: { zones: zoneCount },
      proxyImage: image,
    });
    // The same objects applied a moment ago need not be applied again: a reconcile that only
    // watches Redis stays short, so a pod event (a crash) is acted on sooner. A periodic
    // re-apply still corrects drift.
    const key = `${cc.metadata.namespace}/${cc.metadata.name}`;
    const digest = createHash('sha256').update(JSON.stringify(objects)).digest('hex');
    const last = this.#applied.get(key);
    if (last && last.digest === digest && Date.now() - last.at < REAPPLY_EVERY_MS) return;
    for (const obj of objects) await apply(kube, obj);
    this.#applied.set(key, { digest, at: Date.now() });
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
    // Shards beyond the spec get no slots: a rebalance never moves any onto a leaving shard.
    const leaving = addrs(pods.filter((p) => p.shard >= withDefaults(cc.spec).redis.shards));
    const say = (line: string) => log.info(line);
    // MIGRATE authenticates to the target node with the cluster's password.
    const password = conns.opts.password;
    const opts = { timeoutMs: STEP_TIMEOUT_MS, log: say, password };
    switch (step.kind) {
      case 'bootstrap': {
        await events.record(cc, 'Normal', 'Bootstrapping', `forming ${step.shards.length} shards`);
        // New masters' replicas sync from them at once (nodes start quarantined without persistence).
        await admit(
          conns,
          step.shards.map((s) => s.master),
        );
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
        const healed = await healCluster(conns, seeds, {
          ...opts,
          forget: step.forget,
          members: seeds,
        });
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
          await admit(conns, [s.master]);
          await addShard(
            conns,
            seed!,
            { master: s.master, replicas: s.replicas },
            { ...opts, rebalance: false },
          );
          await events.record(cc, 'Normal', 'ShardAdded', `shard ${s.shard} joined the cluster`);
        }
        return this.#migrate(cc, { state: 'ScalingOut', toShard: step.shards.at(-1)!.shard }, (o) =>
          rebalance(conns, seeds, { ...o, password, leaving }),
        );
      }
      case 'reassign-slots': {
        const view = await observe(conns, seeds);
        const count = await reassignSlots(conns, view, step);
        this.#o.metrics.slotsLost.labels(`${cc.metadata.namespace}/${cc.metadata.name}`).inc(count);
        await events.record(
          cc,
          'Warning',
          'SlotsLost',
          `${names.shard(cc.metadata.name, step.shard)} lost every copy of slots ${formatRanges(step.slots)} (their keys are gone): ${step.master.pod} serves them again, empty`,
        );
        return;
      }
      case 'replace-pod': {
        this.#replacedAt.set(`${cc.metadata.namespace}/${cc.metadata.name}`, Date.now());
        return this.#recreatePod(
          cc,
          step.pod,
          'PodMoved',
          `re-creating ${step.pod} (an in-sync replica) so the scheduler spreads the cluster's pods over every zone`,
        );
      }
      case 'move-master': {
        const mode = await failOverTo(conns, step.addr, 'COORDINATED');
        await events.record(
          cc,
          'Normal',
          'MasterMoved',
          `${names.shard(cc.metadata.name, step.shard)}: ${step.pod} took the master role (CLUSTER FAILOVER ${mode}) so no failure domain holds most masters`,
        );
        return;
      }
      case 'fix': {
        const fixed = await fixCluster(conns, seeds, { ...opts, log: say });
        await events.record(
          cc,
          'Normal',
          'MigrationsFinished',
          `finished ${fixed.closed} slot migrations left open (their keys moved with them)`,
        );
        return;
      }
      case 'rebalance':
        return this.#migrate(cc, { state: 'Rebalancing' }, (o) =>
          rebalance(conns, seeds, { ...o, password, leaving }),
        );
      case 'drain':
        return this.#migrate(cc, { state: 'Draining', fromShard: step.shard }, (o) =>
          removeShard(conns, seeds[0]!, step.master, { ...o, password }),
        );
      case 'restart': {
        // A master's pod hands over during its preStop (the next reconcile sees it leaving).
        return this.#recreatePod(
          cc,
          step.pod,
          'RollingUpdate',
          `restarting ${step.pod}${step.master ? ' (a master: its replica takes over first)' : ''} for the new revision`,
        );
      }
      case 'wait':
      case 'settled':
        return;
    }
  }

  /** Deletes a Redis pod (its StatefulSet re-creates it) and says why in an Event. */
  async #recreatePod(cc: CacheCluster, pod: string, reason: string, message: string) {
    await this.#o.kube.core.deleteNamespacedPod({ name: pod, namespace: cc.metadata.namespace });
    await this.#o.events.record(cc, 'Normal', reason, message);
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
    tookOver: Set<string>,
  ): Promise<void> {
    const { kube, metrics, events } = this.#o;
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
    // A shard whose master moved to another pod failed over (Redis did it, or the operator:
    // those have their own events already).
    const written = this.#masters.get(key);
    for (const s of status.shards ?? []) {
      const before =
        written?.get(s.name) ?? cc.status?.shards?.find((x) => x.name === s.name)?.master;
      if (before && s.master && before !== s.master) {
        metrics.failovers.labels(key).inc();
        if (!tookOver.has(s.master))
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
    // A shard without a master for a moment keeps its last one: the next master is a failover.
    const masters = new Map(written);
    for (const s of status.shards ?? []) if (s.master) masters.set(s.name, s.master);
    this.#masters.set(key, masters);
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

const ZONE_LABEL = 'topology.kubernetes.io/zone';

/** The zone of every Kubernetes node that has one (failure domains; anti-affinity spread). */
function zonesByNode(nodes: V1Node[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const n of nodes) {
    const zone = n.metadata?.labels?.[ZONE_LABEL];
    if (zone && n.metadata?.name) out.set(n.metadata.name, zone);
  }
  return out;
}

/** Zones of the nodes pods can be scheduled to (their names where nodes have no zone). */
function schedulableDomains(nodes: V1Node[]): string[] {
  const open = nodes.filter((n) => !n.spec?.unschedulable);
  const zones = open.map((n) => n.metadata?.labels?.[ZONE_LABEL]);
  const domains = zones.every(Boolean) ? zones : open.map((n) => n.metadata?.name);
  return [...new Set(domains.filter((d): d is string => Boolean(d)))];
}
