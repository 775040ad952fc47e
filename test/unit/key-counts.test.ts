import { describe, expect, it } from 'vitest';
import type { ShardStatus } from '../../operator/api/types.ts';
import { heldKeyCounts, KEY_COUNT_INTERVAL_MS } from '../../operator/controller/key-counts.ts';

const shard = (i: number, keys: number): ShardStatus => ({
  name: `c-shard-${i}`,
  master: `c-shard-${i}-0`,
  replicas: [`c-shard-${i}-1`],
  slots: '0-16383',
  keys,
});

describe('key counts in status, refreshed once a minute', () => {
  it('holds the written counts while a writer changes them, and takes them when due', () => {
    const written = [shard(0, 100), shard(1, 200)];
    const observed = [shard(0, 150), { ...shard(1, 260), master: 'c-shard-1-1' }];
    const held = heldKeyCounts(written, observed, 0, KEY_COUNT_INTERVAL_MS - 1);
    expect(held.refreshed).toBe(false);
    // Only the counts are held: a new master still shows at once.
    expect(held.shards).toEqual([shard(0, 100), { ...shard(1, 200), master: 'c-shard-1-1' }]);
    const due = heldKeyCounts(written, observed, 0, KEY_COUNT_INTERVAL_MS);
    expect(due).toEqual({ shards: observed, refreshed: true });
  });

  it('takes the counts at once for a first write or a new shard', () => {
    expect(heldKeyCounts(undefined, [shard(0, 5)], undefined, 0).refreshed).toBe(true);
    const grown = heldKeyCounts([shard(0, 5)], [shard(0, 6), shard(1, 0)], 0, 1);
    expect(grown).toEqual({ shards: [shard(0, 6), shard(1, 0)], refreshed: true });
  });
});
