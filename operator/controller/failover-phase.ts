/**
 * What cannot wait, run before any step of a reconcile and on its own by the crash fast path:
 * masters that are going away hand over, replicas of masters that are down take over, and
 * quarantined nodes that legitimately hold data may serve replication (decisions in
 * failure-plan.ts, commands in failover.ts and handover.ts). One at a time per CacheCluster:
 * the reconcile and the fast path never both act on one view.
 */
import type { Logger } from '../../lib/log.ts';
import type { CacheCluster } from '../api/types.ts';
import type { Connections } from '../redis/connections.ts';
import { type ClusterView, observe } from '../redis/observe.ts';
import { names } from '../resources/names.ts';
import type { WarnOnce } from '../runtime/warn-once.ts';
import { addrs, type PodRef } from './cluster-pods.ts';
import type { EventRecorder } from './events.ts';
import { admit, promote } from './failover.ts';
import { promotions, shardOfPodName, toAdmit } from './failure-plan.ts';
import { handOverLeavingMasters } from './handover.ts';
import type { MasterBook } from './master-book.ts';

export interface FailoverPhaseOptions {
  log: Logger;
  events: EventRecorder;
  masters: MasterBook;
  warnings: WarnOnce;
}

export class FailoverPhase {
  readonly #o: FailoverPhaseOptions;
  /** The phase under way per CacheCluster (reconcile or crash fast path). */
  readonly #running = new Map<string, Promise<void>>();

  constructor(options: FailoverPhaseOptions) {
    this.#o = options;
  }

  /** Observes the cluster, carries out what cannot wait, and returns the view after it. */
  run(cc: CacheCluster, conns: Connections, pods: PodRef[]): Promise<ClusterView> {
    const key = `${cc.metadata.namespace}/${cc.metadata.name}`;
    const before = this.#running.get(key) ?? Promise.resolve();
    const run = before.then(async () => {
      const view = await observe(conns, addrs(pods));
      const changed = await this.#act(cc, conns, pods, view);
      return changed ? observe(conns, addrs(pods)) : view;
    });
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    this.#running.set(key, settled);
    void settled.then(() => {
      if (this.#running.get(key) === settled) this.#running.delete(key);
    });
    return run;
  }

  /**
   * Handovers of leaving masters, promotions of replicas whose master is down, admission of
   * quarantined nodes; Events for each. True when the cluster's roles changed.
   */
  async #act(
    cc: CacheCluster,
    conns: Connections,
    pods: PodRef[],
    view: ClusterView,
  ): Promise<boolean> {
    const { events, masters, warnings } = this.#o;
    const key = `${cc.metadata.namespace}/${cc.metadata.name}`;
    const handovers = await handOverLeavingMasters(conns, pods, view);
    for (const h of handovers.done) {
      masters.moved(cc, shardOfPodName(h.to), h.to);
      await events.record(
        cc,
        'Normal',
        'HandedOver',
        `${h.from} is going away: ${h.to} took over its slots (CLUSTER FAILOVER, ${h.ms} ms)`,
      );
    }
    for (const pod of handovers.unprotected)
      if (warnings.first(`${key}/${pod}/unprotected`))
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
      masters.moved(cc, p.shard, p.to.pod);
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
    return handovers.done.length + promoted.length + admitting.length > 0;
  }
}
