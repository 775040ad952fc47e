/**
 * The master pod of each shard as this operator last knew it, per CacheCluster (the
 * informer's copy of the status may lag). A master that changed without the operator moving
 * it is a failover Redis made by itself, and is reported as one.
 */
import type { CacheCluster, ShardStatus } from '../api/types.ts';
import type { OperatorMetrics } from '../metrics.ts';
import { names } from '../resources/names.ts';
import { shardOfPodName } from './failure-plan.ts';

export class MasterBook {
  readonly #masters = new Map<string, Map<string, string>>();
  /** When each shard last held an election (a failover, or a move tried), per CacheCluster. */
  readonly #elections = new Map<string, Map<number, number>>();
  readonly #metrics: OperatorMetrics;

  constructor(metrics: OperatorMetrics) {
    this.#metrics = metrics;
  }

  /**
   * The operator made `pod` its shard's master (its own Event says how): counted as a
   * failover, and written down so it is not reported again as one Redis made.
   */
  moved(cc: CacheCluster, shard: number | undefined, pod: string): void {
    if (shard === undefined) return;
    const key = `${cc.metadata.namespace}/${cc.metadata.name}`;
    const masters = this.#masters.get(key) ?? new Map<string, string>();
    masters.set(names.shard(cc.metadata.name, shard), pod);
    this.#masters.set(key, masters);
    this.#metrics.failovers.labels(key).inc();
    this.elected(key, shard);
  }

  /** A replica of `shard` asked for votes now (whether or not it won). */
  elected(key: string, shard: number): void {
    const at = this.#elections.get(key) ?? new Map<number, number>();
    at.set(shard, Date.now());
    this.#elections.set(key, at);
  }

  /** The shards whose last election is less than `ms` ago. */
  electedWithin(key: string, ms: number): Set<number> {
    const now = Date.now();
    const at = this.#elections.get(key) ?? new Map<number, number>();
    return new Set([...at].filter(([, t]) => now - t < ms).map(([shard]) => shard));
  }

  /**
   * The shards of a status about to be written whose master changed behind the operator's back
   * (each counted as a failover), as [shard, old master, new master]; then the book holds the
   * status's masters (a shard without a master for a moment keeps its last one).
   */
  record(cc: CacheCluster, shards: ShardStatus[]): [string, string, string][] {
    const key = `${cc.metadata.namespace}/${cc.metadata.name}`;
    const written = this.#masters.get(key);
    const changed: [string, string, string][] = [];
    for (const s of shards) {
      const before =
        written?.get(s.name) ?? cc.status?.shards?.find((x) => x.name === s.name)?.master;
      if (before && s.master && before !== s.master) {
        this.#metrics.failovers.labels(key).inc();
        changed.push([s.name, before, s.master]);
        const shard = shardOfPodName(s.master);
        if (shard !== undefined) this.elected(key, shard);
      }
    }
    const masters = new Map(written);
    for (const s of shards) if (s.master) masters.set(s.name, s.master);
    this.#masters.set(key, masters);
    return changed;
  }

  forget(key: string): void {
    this.#masters.delete(key);
    this.#elections.delete(key);
  }
}
