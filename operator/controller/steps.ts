/**
 * Carrying out the Redis step the planner chose for a CacheCluster (redis-plan.ts decides):
 * bootstrap, heal, attach, add or drain shards, reassign lost slots, re-create or restart a
 * pod, move a master, finish or run migrations. Each step says what it did in an Event; a
 * migration keeps status.migration current.
 */
import type { Logger } from '../../lib/log.ts';
import { formatRanges } from '../../lib/redis/topology.ts';
import { type CacheCluster, type MigrationStatus, withDefaults } from '../api/types.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { type Connections, parseInfo } from '../redis/connections.ts';
import { formCluster } from '../redis/create.ts';
import { healCluster } from '../redis/heal.ts';
import { observe } from '../redis/observe.ts';
import { planShards } from '../redis/plan-create.ts';
import {
  addShard,
  fixCluster,
  type ReshardOptions,
  rebalance,
  removeShard,
} from '../redis/reshard.ts';
import { names } from '../resources/names.ts';
import { applyStatus, type Kube } from '../runtime/kube.ts';
import { addrs, linkInSync, type PodRef } from './cluster-pods.ts';
import type { EventRecorder } from './events.ts';
import { admit, failOverTo, reassignSlots } from './failover.ts';
import type { RedisStep } from './redis-plan.ts';

const STEP_TIMEOUT_MS = 120_000;
/**
 * How long a heal waits for every node to see every other after its MEETs. Gossip settles in
 * seconds (a returned master's FAIL flag clears after 2 × node timeout); past this the step
 * fails and the next reconcile plans again from a fresh view — which may first forget a dead
 * node — instead of blocking every other repair (a 120 s wait was seen in a clean-clone run).
 */
const HEAL_WAIT_MS = 30_000;
const PROGRESS_WRITE_MS = 1000;
/** Pods re-created to even out placement: at most one this often (each costs a full sync). */
const REPLACE_EVERY_MS = 20_000;

export interface StepRunnerOptions {
  kube: Kube;
  log: Logger;
  metrics: OperatorMetrics;
  events: EventRecorder;
  /** The operator made `pod` its shard's master (counted, and not reported again as Redis's). */
  masterMoved: (cc: CacheCluster, shard: number, pod: string) => void;
  /** A replica of `shard` asks for votes now. */
  elected: (cc: CacheCluster, shard: number) => void;
  /** Aborted when the operator shuts down: migrations finish the slots in flight and stop. */
  stopping?: AbortSignal | undefined;
}

export class StepRunner {
  readonly #o: StepRunnerOptions;
  /** When a pod was last re-created to even out placement, per CacheCluster. */
  readonly #replacedAt = new Map<string, number>();

  constructor(options: StepRunnerOptions) {
    this.#o = options;
  }

  /** Whether a pod may be re-created to even out placement now (one every 20 s at most). */
  mayReplacePods(key: string): boolean {
    return Date.now() - (this.#replacedAt.get(key) ?? 0) > REPLACE_EVERY_MS;
  }

  forget(key: string): void {
    this.#replacedAt.delete(key);
  }

  /** Carries out one step (a migration writes its own progress to status.migration). */
  async carryOut(
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
    const opts = { timeoutMs: STEP_TIMEOUT_MS, log: say, signal: this.#o.stopping };
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
          timeoutMs: HEAL_WAIT_MS,
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
          rebalance(conns, seeds, { ...o, leaving }),
        );
      }
      case 'reassign-slots': {
        const view = await observe(conns, seeds);
        const count = await reassignSlots(conns, view, step);
        this.#o.masterMoved(cc, step.shard, step.master.pod);
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
        if (!(await this.#stillInSyncReplica(conns, pods, step.pod, log))) return;
        this.#replacedAt.set(`${cc.metadata.namespace}/${cc.metadata.name}`, Date.now());
        return this.#recreatePod(
          cc,
          step.pod,
          'PodMoved',
          `re-creating ${step.pod} (an in-sync replica) so the scheduler spreads the cluster's pods over every zone`,
        );
      }
      case 'move-master': {
        // Tried counts as an election: one that wins no vote must not be retried at once.
        this.#o.elected(cc, step.shard);
        const mode = await failOverTo(conns, step.addr, 'COORDINATED');
        this.#o.masterMoved(cc, step.shard, step.pod);
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
          rebalance(conns, seeds, { ...o, leaving }),
        );
      case 'drain':
        return this.#migrate(cc, { state: 'Draining', fromShard: step.shard }, (o) =>
          removeShard(conns, seeds[0]!, step.master, o),
        );
      case 'restart': {
        if (!step.master && !(await this.#stillInSyncReplica(conns, pods, step.pod, log))) return;
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

  /**
   * Asks the node itself, just before its pod is deleted as "a replica in sync": the plan comes
   * from a view taken at the start of the reconcile, and the crash path may have promoted that
   * very replica since (found by the failure suite: a replica promoted 180 ms earlier was
   * re-created as a spread move, and its shard lost every copy). When the answer differs, the
   * step is skipped and the next reconcile plans from what is true.
   */
  async #stillInSyncReplica(
    conns: Connections,
    pods: PodRef[],
    pod: string,
    log: Logger,
  ): Promise<boolean> {
    const addr = pods.find((p) => p.name === pod)?.addr;
    const info = addr
      ? parseInfo(await conns.call<string>(addr, 'INFO', 'replication').catch(() => ''))
      : {};
    const ok = info.role === 'slave' && linkInSync(info);
    if (!ok)
      log.info(
        { pod, role: info.role ?? 'unknown' },
        'not re-creating the pod: it is no longer a replica in sync',
      );
    return ok;
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
      signal: this.#o.stopping,
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
}
