/**
 * Coalesced batch fetches, for upstreams that answer many keys in one call (CoinGecko's
 * simple/price). Each key is fetched once however many batches want it at the same time:
 * inside the process a key another batch is fetching is awaited, and across replicas a key
 * whose Redis lease another replica holds is read from L2 once that replica stored it.
 * Whatever is left when the lease time runs out (its holder died) is fetched here after all.
 * A key the upstream's answer leaves out (CoinGecko omits unknown ids) is left out of the
 * result, for that key only; a failed call fails every key it was for.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { CacheSlot, UpstreamResponse } from '../upstreams/types.ts';
import { LEASE_POLL_MS, type Served, type TieredCache } from './tiered.ts';

/** Calls the upstream once for the slots given; answers by cache key, none for a key it has no answer for. */
export type BatchFetch = (slots: CacheSlot[]) => Promise<Map<string, UpstreamResponse>>;

interface Pending {
  promise: Promise<Served | undefined>;
  resolve(served: Served | undefined): void;
  reject(err: unknown): void;
}

function pending(): Pending {
  let resolve!: (s: Served | undefined) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<Served | undefined>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined); // rejections reach whoever awaits it; none is unhandled
  return { promise, resolve, reject };
}

export class BatchCoalescer {
  readonly #cache: TieredCache;
  readonly #inFlight = new Map<string, Pending>();
  readonly #onCoalesced: () => void;

  constructor(cache: TieredCache, onCoalescedInProcess: () => void) {
    this.#cache = cache;
    this.#onCoalesced = onCoalescedInProcess;
  }

  /**
   * Fetches the slots (all missing from the cache), each key at most once across batches and
   * replicas; a key the upstream did not answer is absent from the result.
   */
  async fetch(slots: CacheSlot[], fetchBatch: BatchFetch): Promise<Map<string, Served>> {
    const out = new Map<string, Served>();
    const joined: Promise<void>[] = [];
    const mine: CacheSlot[] = [];
    for (const slot of slots) {
      const other = this.#inFlight.get(slot.key);
      if (other) {
        this.#onCoalesced();
        joined.push(
          other.promise.then((s) => {
            if (s) out.set(slot.key, s.source === 'MISS' ? { ...s, detail: 'coalesced' } : s);
          }),
        );
      } else {
        mine.push(slot);
        this.#inFlight.set(slot.key, pending());
      }
    }
    const settle = (slot: CacheSlot, served: Served | undefined) => {
      if (served) out.set(slot.key, served);
      this.#inFlight.get(slot.key)?.resolve(served);
    };
    try {
      await this.#fetchMine(mine, fetchBatch, settle);
    } catch (err) {
      for (const slot of mine) this.#inFlight.get(slot.key)?.reject(err);
      throw err;
    } finally {
      for (const slot of mine) this.#inFlight.delete(slot.key);
    }
    await Promise.all(joined);
    return out;
  }

  async #fetchMine(
    mine: CacheSlot[],
    fetchBatch: BatchFetch,
    settle: (slot: CacheSlot, served: Served | undefined) => void,
  ): Promise<void> {
    const cache = this.#cache;
    const leases = await Promise.all(mine.map((slot) => cache.lease(slot)));
    const here: CacheSlot[] = [];
    let elsewhere: CacheSlot[] = [];
    for (const [i, lease] of leases.entries()) {
      const slot = mine[i]!;
      if (typeof lease === 'object') settle(slot, lease);
      else if (lease === 'taken') elsewhere.push(slot);
      else here.push(slot);
    }

    // The answers are served as soon as they are in hand; their L2 writes go out together
    // behind them, and the leases are let go once those have landed.
    const writes: Promise<void>[] = [];
    const fetchNow = async (batch: CacheSlot[]) => {
      if (batch.length === 0) return;
      const answers = await fetchBatch(batch);
      for (const slot of batch) {
        const answer = answers.get(slot.key);
        if (!answer) {
          settle(slot, undefined);
          continue;
        }
        const kept = cache.keep(slot, answer);
        writes.push(kept.written);
        settle(slot, kept.served);
      }
    };
    // The leases won are renewed while the batch is fetched (it may outlast a lease).
    const stopHolding = cache.holdLeases(mine.filter((_, i) => leases[i] === 'mine'));
    const waitForOthers = async () => {
      // Only a lease's time: unlike a single key's wait, this one does not take a lapsed lease
      // over, so a dead holder would keep it waiting for the whole bound.
      const deadline = Date.now() + cache.leaseMs;
      while (elsewhere.length > 0 && Date.now() < deadline) {
        await sleep(LEASE_POLL_MS);
        const found = await Promise.all(elsewhere.map((slot) => cache.takeCoalesced(slot)));
        for (const [i, served] of found.entries()) if (served) settle(elsewhere[i]!, served);
        elsewhere = elsewhere.filter((_, i) => !found[i]);
      }
      await fetchNow(elsewhere);
    };
    // Both run to the end (neither is left running unobserved), then the first failure counts.
    const results = await Promise.allSettled([fetchNow(here), waitForOthers()]);
    Promise.all(writes).then(() => {
      stopHolding();
      for (const [i, slot] of mine.entries()) if (leases[i] === 'mine') cache.releaseLease(slot);
    });
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  }
}
