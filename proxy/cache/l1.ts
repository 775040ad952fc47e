/**
 * L1: in-process LRU bounded by bytes. Images get their own budget so a burst of posters
 * cannot push every JSON entry out. Entries stay until their stale window ends (so they can
 * be served stale; dead ones are dropped when met, and LRU eviction bounds the rest — no
 * per-entry timers); `freshUntil` says how long L1 may answer without asking L2 again.
 */
import { LRUCache } from 'lru-cache';
import { type CacheEntry, entryCost } from './entry.ts';

export interface L1Item {
  entry: CacheEntry;
  /** ms since epoch until which L1 answers on its own. */
  freshUntil: number;
}

export type L1Pool = 'default' | 'image';

export interface L1Stats {
  entries: number;
  bytes: number;
  maxBytes: number;
  imageEntries: number;
  imageBytes: number;
  imageMaxBytes: number;
}

function makeLru(maxBytes: number): LRUCache<string, L1Item> | undefined {
  if (maxBytes <= 0) return undefined;
  return new LRUCache<string, L1Item>({
    maxSize: maxBytes,
    // A single entry may take at most a quarter of the budget; larger ones are not kept.
    maxEntrySize: Math.max(1, Math.floor(maxBytes / 4)),
    sizeCalculation: (item, key) => entryCost(key, item.entry),
  });
}

export class MemoryTier {
  readonly #pools: Record<L1Pool, LRUCache<string, L1Item> | undefined>;
  readonly #maxBytes: number;
  readonly #imageMaxBytes: number;
  #epoch = 0;

  constructor(opts: { maxBytes: number; imageMaxBytes: number }) {
    this.#maxBytes = opts.maxBytes;
    this.#imageMaxBytes = opts.imageMaxBytes;
    this.#pools = { default: makeLru(opts.maxBytes), image: makeLru(opts.imageMaxBytes) };
  }

  /** The item, unless its stale window has ended (then it is dropped). */
  get(key: string, pool: L1Pool, now: number): L1Item | undefined {
    const lru = this.#pools[pool];
    const item = lru?.get(key);
    if (item && item.entry.staleUntil <= now) {
      lru!.delete(key);
      return undefined;
    }
    return item;
  }

  set(key: string, pool: L1Pool, entry: CacheEntry, memoryMs: number, now: number): void {
    const lru = this.#pools[pool];
    if (!lru || memoryMs <= 0) return;
    if (entry.staleUntil <= now) return;
    lru.set(key, { entry, freshUntil: Math.min(now + memoryMs, entry.expiresAt) });
  }

  /**
   * Moves on at every invalidation (delete, clear, prefix): an L2 read that began in an older
   * epoch may have read what was just invalidated, so its answer is not kept (TieredCache).
   */
  get epoch(): number {
    return this.#epoch;
  }

  delete(key: string): void {
    this.#epoch += 1;
    this.#pools.default?.delete(key);
    this.#pools.image?.delete(key);
  }

  clear(): number {
    this.#epoch += 1;
    const n = (this.#pools.default?.size ?? 0) + (this.#pools.image?.size ?? 0);
    this.#pools.default?.clear();
    this.#pools.image?.clear();
    return n;
  }

  /** Drops every entry whose key starts with `prefix`; returns how many. */
  deletePrefix(prefix: string): number {
    this.#epoch += 1;
    let n = 0;
    for (const lru of [this.#pools.default, this.#pools.image]) {
      if (!lru) continue;
      for (const key of [...lru.keys()]) {
        if (key.startsWith(prefix)) {
          lru.delete(key);
          n += 1;
        }
      }
    }
    return n;
  }

  /** Entries and bytes held under `prefix`. */
  usage(prefix: string): { entries: number; bytes: number } {
    let entries = 0;
    let bytes = 0;
    for (const lru of [this.#pools.default, this.#pools.image]) {
      if (!lru) continue;
      for (const [key, item] of lru.entries()) {
        if (!key.startsWith(prefix)) continue;
        entries += 1;
        bytes += entryCost(key, item.entry);
      }
    }
    return { entries, bytes };
  }

  /** Whether either pool holds `key` (its recency is left as it is). */
  has(key: string): boolean {
    return (this.#pools.default?.has(key) ?? false) || (this.#pools.image?.has(key) ?? false);
  }

  /** Keys of both pools, most recently used first. */
  *keys(): Generator<string> {
    if (this.#pools.default) yield* this.#pools.default.keys();
    if (this.#pools.image) yield* this.#pools.image.keys();
  }

  stats(): L1Stats {
    return {
      entries: this.#pools.default?.size ?? 0,
      bytes: this.#pools.default?.calculatedSize ?? 0,
      maxBytes: this.#maxBytes,
      imageEntries: this.#pools.image?.size ?? 0,
      imageBytes: this.#pools.image?.calculatedSize ?? 0,
      imageMaxBytes: this.#imageMaxBytes,
    };
  }
}
