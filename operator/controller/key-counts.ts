/**
 * Key counts in status, refreshed at most once a minute (pure). They change with every write,
 * so reporting them as observed would rewrite the CacheCluster's status on every reconcile of
 * a busy cache — churn for the API server and for everyone watching CacheClusters.
 */
import type { ShardStatus } from '../api/types.ts';

export const KEY_COUNT_INTERVAL_MS = 60_000;

/**
 * `next` with the key counts of `previous` unless they are due (`refreshedAt` a minute old or
 * never) or a shard is new; `refreshed` says whether the counts were taken from `next`.
 */
export function heldKeyCounts(
  previous: ShardStatus[] | undefined,
  next: ShardStatus[],
  refreshedAt: number | undefined,
  now: number,
): { shards: ShardStatus[]; refreshed: boolean } {
  const before = new Map((previous ?? []).map((s) => [s.name, s.keys]));
  const due =
    refreshedAt === undefined ||
    now - refreshedAt >= KEY_COUNT_INTERVAL_MS ||
    next.some((s) => !before.has(s.name));
  if (due) return { shards: next, refreshed: true };
  return {
    shards: next.map((s) => ({ ...s, keys: before.get(s.name) ?? s.keys })),
    refreshed: false,
  };
}
