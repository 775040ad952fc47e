/**
 * The three tiers together: L1 (memory) → L2 (Redis) → L3 (upstream), with request
 * coalescing inside the process (singleflight) and across replicas (a short Redis lease),
 * stale-while-revalidate, stale-if-error, and L2 trouble never failing a request.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import { isTiercacheError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/log.ts';
import type { CategoryCells, ProxyMetrics } from '../metrics.ts';
import { inBackground } from '../upstreams/call-context.ts';
import type { CacheSlot, UpstreamRequest, UpstreamResponse } from '../upstreams/types.ts';
import type { CacheEntry } from './entry.ts';
import type { L1Item, L1Pool, MemoryTier } from './l1.ts';
import type { LookLease, RedisTier } from './l2.ts';
import { freshness, lifetimeMs, type TtlPair, ttlForStatus } from './policy.ts';
import { Singleflight } from './singleflight.ts';

export type Source = 'L1' | 'L2' | 'MISS' | 'STALE';

export interface Served {
  entry: CacheEntry;
  source: Source;
  /** Why: e.g. 'coalesced', 'stale-while-revalidate', 'stale-if-error'. */
  detail?: string;
  /** Status the upstream gave when we forwarded (RFC 9211 fwd-status). */
  fwdStatus?: number;
  stored: boolean;
}

/** What lookup finds: a fresh answer, or the freshest entry still inside its stale window. */
export interface Lookup {
  hit?: Served;
  stale?: CacheEntry;
  /**
   * The fetch lease, when the look took it (serve's look does, on an L2 miss), or 'none' when
   * L2 did not answer that look (not asked again for this request).
   */
  lease?: Looked;
}

/** An answer kept: served at once, written to L2 behind it (`written` settles when it has landed or failed). */
export interface Kept {
  served: Served;
  written: Promise<void>;
}

const WRITTEN: Promise<void> = Promise.resolve();

/** What serve's look said about the lease (see Lookup.lease). */
type Looked = LookLease | 'none';

export interface TieredOptions {
  l1: MemoryTier;
  l2: RedisTier | undefined;
  staleMs: number;
  notFoundMs: number;
  leaseMs: number;
  /** The upstream's timeout: a fetch may run this long, its lease renewed meanwhile. */
  upstreamTimeoutMs: number;
  /** Largest body stored in L2 (bytes): a bigger answer stays in L1 only. */
  l2MaxEntryBytes: number;
  metrics: ProxyMetrics;
  log: Logger;
}

/** A background refresh that failed waits this long (doubling to REFRESH_BACKOFF_MAX_MS) before the next. */
const REFRESH_BACKOFF_MS = 1000;
const REFRESH_BACKOFF_MAX_MS = 60_000;

/** How often a replica waiting for another one's fetch looks in L2. */
export const LEASE_POLL_MS = 25;

/** What taking a key's fetch lease gave: see `TieredCache.lease`. */
export type Lease = 'mine' | 'taken' | 'none' | Served;

/** The status a failed fetch stands for in `fwd-status`: its own, or 502 for anything else. */
export function failureStatus(err: unknown): number {
  return isTiercacheError(err) ? err.httpStatus : 502;
}

export function poolOf(cls: string): L1Pool {
  return cls === 'image' ? 'image' : 'default';
}

/** An answer from L1, counted as an L1 hit. */
function l1Hit(entry: CacheEntry, counts: CategoryCells): Lookup {
  counts.hit.L1.inc();
  return { hit: { entry, source: 'L1', stored: true } };
}

export class TieredCache {
  readonly l1: MemoryTier;
  readonly l2: RedisTier | undefined;
  readonly #flight = new Singleflight<Served>();
  /** Keys whose last background refresh failed: until when the stale entry is served without a new one. */
  readonly #refreshBackoff = new LRUCache<
    string,
    { until: number; strikes: number; fwdStatus: number }
  >({
    max: 10_000,
  });
  readonly #owner = randomUUID();
  readonly #opts: TieredOptions;
  readonly #log: Logger;

  constructor(opts: TieredOptions) {
    this.l1 = opts.l1;
    this.l2 = opts.l2;
    this.#opts = opts;
    this.#log = opts.log.child({ component: 'cache' });
  }

  /** The synchronous fast path: a fresh L1 entry, or undefined. */
  peek(slot: CacheSlot): CacheEntry | undefined {
    const now = Date.now();
    const item = this.#inL1(slot, now);
    if (item && now < item.freshUntil) {
      this.#opts.metrics.lookups.of(slot.cls).hit.L1.inc();
      return item.entry;
    }
    return undefined;
  }

  /**
   * What the tiers hold for a key, without asking the upstream: a fresh answer (from L1 or
   * L2), or else the freshest entry still inside its stale window.
   */
  lookup(req: CacheSlot): Promise<Lookup> {
    return this.#find(req, false, (found) => found);
  }

  /**
   * Looks in L1, then L2, and hands what it found to `next` — in the same promise step as
   * Redis's reply (RedisTier.read), not with async/await: every L2 hit passes through here, and
   * each extra layer (a promise and a microtask) measured ~1 % of an L2 hit. With `takeLease`
   * an L2 miss takes the key's fetch lease in the same round trip where that pays
   * (RedisTier.looksAndLeasesAtOnce).
   */
  #find<R>(
    req: CacheSlot,
    takeLease: boolean,
    next: (found: Lookup) => R | Promise<R>,
  ): Promise<R> {
    const now = Date.now();
    const counts = this.#opts.metrics.lookups.of(req.cls);
    const l1Item = this.#inL1(req, now);
    if (l1Item && now < l1Item.freshUntil)
      return Promise.resolve(next(l1Hit(l1Item.entry, counts)));
    counts.miss.L1.inc();
    const candidate =
      l1Item && freshness(l1Item.entry.expiresAt, l1Item.entry.staleUntil, now) !== 'dead'
        ? l1Item.entry
        : undefined;
    if (!this.usesL2(req)) {
      if (candidate && now < candidate.expiresAt)
        return Promise.resolve(next(l1Hit(candidate, counts)));
      return Promise.resolve(next(candidate ? { stale: candidate } : {}));
    }
    const epoch = this.l1.epoch;
    const done = (fromL2: CacheEntry | undefined | 'unavailable', lease?: LookLease) => {
      const found = this.#afterL2(req, fromL2, candidate, now, counts, epoch);
      // L2 did not answer in time (or at all): a miss goes on without asking it for a lease.
      if (takeLease && fromL2 === 'unavailable') found.lease = 'none';
      else if (lease) found.lease = lease;
      return next(found);
    };
    return takeLease && this.l2!.firstLookTakesLease(req.key)
      ? this.l2!.readOrLease(req.key, this.#owner, this.leaseMs, done)
      : this.l2!.read(req.key, done);
  }

  #afterL2(
    req: CacheSlot,
    fromL2: CacheEntry | undefined | 'unavailable',
    l1Candidate: CacheEntry | undefined,
    now: number,
    counts: CategoryCells,
    /** L1's epoch when the L2 read began: a clear since then may have removed this entry. */
    epoch: number,
  ): Lookup {
    let candidate = l1Candidate;
    if (fromL2 === 'unavailable') {
      // L1's own copy is still within its upstream lifetime: better than asking upstream.
      if (candidate && now < candidate.expiresAt) return l1Hit(candidate, counts);
    } else if (fromL2) {
      const state = freshness(fromL2.expiresAt, fromL2.staleUntil, now);
      if (state === 'fresh') {
        counts.hit.L2.inc();
        if (this.l1.epoch === epoch)
          this.l1.set(req.key, poolOf(req.cls), fromL2, req.ttl.memoryMs, now);
        return { hit: { entry: fromL2, source: 'L2', stored: true } };
      }
      if (state === 'stale' && (!candidate || fromL2.storedAt > candidate.storedAt))
        candidate = fromL2;
    }
    counts.miss.L2.inc();
    return candidate ? { stale: candidate } : {};
  }

  serve(req: UpstreamRequest): Promise<Served> {
    return this.#find(
      req,
      true,
      ({ hit, stale, lease }) => hit ?? this.#serveMiss(req, stale, lease),
    );
  }

  /**
   * No fresh entry in L1 or L2: the stale one while it is refreshed, else the upstream's answer.
   * `lease` is what the look took; whatever ends up not fetching lets a lease it holds go.
   */
  async #serveMiss(
    req: UpstreamRequest,
    candidate: CacheEntry | undefined,
    lease: Looked,
  ): Promise<Served> {
    const { metrics } = this.#opts;
    if (candidate) {
      // The last refresh of this key failed a moment ago: stale because of that error.
      const failedWith = this.#revalidate(req, candidate, lease);
      if (failedWith !== undefined) return this.staleOnError(candidate, failedWith);
      metrics.stale.revalidate.inc();
      return { entry: candidate, source: 'STALE', detail: 'stale-while-revalidate', stored: true };
    }
    const { result, joined } = this.#flight.run(req.key, () =>
      this.#fetchAcrossReplicas(req, undefined, true, lease),
    );
    if (!joined) return result;
    // This process's fetch of the key holds no lease (ours would have been refused): let it go.
    if (lease === 'mine') this.releaseLease(req);
    metrics.coalesced.process.inc();
    const shared = await result;
    return shared.source === 'MISS' ? { ...shared, detail: 'coalesced' } : shared;
  }

  /** Clears L1 only (this replica). */
  clearMemory(): number {
    return this.l1.clear();
  }

  /** L1's item for a slot; a class with no memory TTL is never stored there (MemoryTier.set), so it is not looked for. */
  #inL1(slot: CacheSlot, now: number): L1Item | undefined {
    return slot.ttl.memoryMs > 0 ? this.l1.get(slot.key, poolOf(slot.cls), now) : undefined;
  }

  /** Whether a slot's class is kept in L2 (and L2 is configured). */
  usesL2(req: CacheSlot): boolean {
    return this.l2 !== undefined && req.ttl.diskMs > 0;
  }

  /**
   * Background refresh of a stale entry: one per key per process, skipped when another replica
   * holds the lease, and not tried again until a back-off after a failed one has passed (then
   * the status that refresh failed with is returned).
   */
  #revalidate(req: UpstreamRequest, stale: CacheEntry, lease: Looked): number | undefined {
    const notNow = (answer: number | undefined) => {
      if (lease === 'mine') this.releaseLease(req);
      return answer;
    };
    if (this.#flight.has(req.key)) return notNow(undefined);
    const backoff = this.#refreshBackoff.get(req.key);
    if (backoff && Date.now() < backoff.until) return notNow(backoff.fwdStatus);
    const { result } = this.#flight.run(req.key, () =>
      inBackground(() => this.#fetchAcrossReplicas(req, stale, false, lease)),
    );
    const failed = (fwdStatus: number) => {
      const strikes = (backoff?.strikes ?? 0) + 1;
      const waitMs = Math.min(REFRESH_BACKOFF_MS * 2 ** (strikes - 1), REFRESH_BACKOFF_MAX_MS);
      this.#refreshBackoff.set(req.key, { until: Date.now() + waitMs, strikes, fwdStatus });
    };
    result.then(
      (served) => {
        if (served.detail === 'stale-if-error') failed(served.fwdStatus ?? 502);
        else this.#refreshBackoff.delete(req.key);
      },
      (err) => {
        failed(failureStatus(err));
        this.#log.warn({ key: req.key, err: (err as Error).message }, 'background refresh failed');
      },
    );
    return undefined;
  }

  /**
   * Fetches from upstream unless another replica is already doing so, in which case it waits
   * for that replica's answer to appear in L2 (up to the lease time).
   */
  async #fetchAcrossReplicas(
    req: UpstreamRequest,
    stale: CacheEntry | undefined,
    wait: boolean,
    /** The lease the look already took (or found taken, or could not ask for): not asked again. */
    looked: Looked,
  ): Promise<Served> {
    const deadline = Date.now() + this.waitBoundMs;
    let first = looked;
    for (;;) {
      const lease = first ?? (await this.lease(req));
      first = undefined;
      if (typeof lease === 'object') return lease;
      if (lease !== 'taken') return this.#fetchUpstream(req, stale, lease === 'mine');
      if (!wait)
        return { entry: stale!, source: 'STALE', detail: 'stale-while-revalidate', stored: true };
      await sleep(LEASE_POLL_MS);
      const got = await this.takeCoalesced(req);
      if (got) return got;
      // The holder may have died: its lease expires and we take over, or the deadline passes.
      if (Date.now() > deadline) return this.#fetchUpstream(req, stale, false);
    }
  }

  /** How long a key's fetch lease lasts unless its holder renews it (a dead holder's lapses then). */
  get leaseMs(): number {
    return this.#opts.leaseMs;
  }

  /** How long a replica waits for another one's fetch: the longest a live holder may take. */
  get waitBoundMs(): number {
    return this.#opts.upstreamTimeoutMs + this.#opts.leaseMs;
  }

  /**
   * Renews the leases of `slots` while their fetch runs (a fetch may take up to the upstream
   * timeout, longer than a lease); returns the function that stops it.
   */
  holdLeases(slots: CacheSlot[]): () => void {
    if (!this.l2 || slots.length === 0) return () => undefined;
    const l2 = this.l2;
    const timer = setInterval(
      () => {
        for (const slot of slots)
          l2.extendLease(slot.key, this.#owner, this.leaseMs).catch(() => undefined);
      },
      Math.max(50, this.leaseMs / 2),
    );
    timer.unref();
    return () => clearInterval(timer);
  }

  /**
   * Takes the cross-replica fetch lease of a key: 'mine' when this replica should fetch it,
   * 'taken' when another one is fetching it, 'none' when L2 cannot say (fetch, no lease held),
   * or the entry itself when another replica stored it after this one last looked in L2.
   */
  async lease(slot: CacheSlot): Promise<Lease> {
    if (!this.usesL2(slot)) return 'none';
    // One round trip: the entry if another replica stored it since the caller looked, else
    // the lease.
    const epoch = this.l1.epoch;
    const looked = !this.l2!.looksAndLeasesAtOnce(slot.key)
      ? 'two-step'
      : await this.l2!.readOrLease(
          slot.key,
          this.#owner,
          this.leaseMs,
          (found, lease): Lease | 'two-step' => {
            if (found === 'unavailable') return 'none';
            if (found && Date.now() < found.expiresAt)
              return this.#coalescedHit(slot, found, epoch);
            return lease ?? 'two-step';
          },
        );
    if (looked !== 'two-step') return looked;
    // A stale entry is there (the script takes no lease beside one), or the key's lease cannot
    // share its slot: take the lease, then look once more.
    let mine: boolean;
    try {
      mine = await this.l2!.acquireLease(slot.key, this.#owner, this.leaseMs);
    } catch {
      return 'none';
    }
    if (!mine) return 'taken';
    // The lease's last holder stores its answer before letting go, so a lease won after that
    // finds the answer in L2. Without this look, a replica whose own look came just before
    // the store would fetch the key a second time.
    const found = await this.takeCoalesced(slot);
    if (!found) return 'mine';
    this.releaseLease(slot);
    return found;
  }

  releaseLease(slot: CacheSlot): void {
    this.l2?.releaseLease(slot.key, this.#owner).catch(() => undefined);
  }

  /** One look in L2 for an entry another replica was fetching; found fresh, it is counted and kept in L1. */
  async takeCoalesced(slot: CacheSlot): Promise<Served | undefined> {
    const epoch = this.l1.epoch;
    const got = await this.l2!.read(slot.key, (found) =>
      found === 'unavailable' ? undefined : found,
    );
    if (!got || Date.now() >= got.expiresAt) return undefined;
    return this.#coalescedHit(slot, got, epoch);
  }

  /** A fresh entry another replica fetched, found in L2: counted, and kept in L1 unless a clear came since `epoch`. */
  #coalescedHit(slot: CacheSlot, got: CacheEntry, epoch: number): Served {
    this.#opts.metrics.coalesced.cluster.inc();
    this.#opts.metrics.lookups.of(slot.cls).hit.L2.inc();
    if (this.l1.epoch === epoch)
      this.l1.set(slot.key, poolOf(slot.cls), got, slot.ttl.memoryMs, Date.now());
    return { entry: got, source: 'L2', detail: 'coalesced', stored: true };
  }

  async #fetchUpstream(
    req: UpstreamRequest,
    stale: CacheEntry | undefined,
    leased: boolean,
  ): Promise<Served> {
    const stopHolding = leased ? this.holdLeases([req]) : () => undefined;
    let written = WRITTEN;
    try {
      let res: UpstreamResponse;
      try {
        res = await req.fetch();
      } catch (err) {
        if (stale) return this.staleOnError(stale, failureStatus(err));
        throw err;
      }
      if (res.status === 429 || res.status >= 500) {
        if (stale) return this.staleOnError(stale, res.status);
        return {
          entry: this.#transient(res),
          source: 'MISS',
          fwdStatus: res.status,
          stored: false,
        };
      }
      const kept = this.keep(req, res);
      written = kept.written;
      return kept.served;
    } finally {
      // The answer goes to the client now; the lease is let go once L2 has it, so a replica
      // that takes the lease next finds the answer there instead of fetching it again.
      written.then(() => {
        stopHolding();
        if (leased) this.releaseLease(req);
      });
    }
  }

  /**
   * An upstream answer as served: stored in the tiers when it may be (L1 at once, L2 behind
   * it), passed through when not.
   */
  keep(req: CacheSlot, res: UpstreamResponse): Kept {
    const stored = this.#store(req, res);
    const entry = stored?.entry ?? this.#transient(res);
    return {
      served: {
        entry,
        source: 'MISS',
        fwdStatus: res.status,
        stored: stored !== undefined,
        ...(res.viaShield ? { detail: 'shield' } : {}),
      },
      written: stored?.written ?? WRITTEN,
    };
  }

  /** L2 writes still on their way: awaited before L2 closes, so none is cut off. */
  readonly #writes = new Set<Promise<void>>();

  /** Settles once every L2 write begun so far has landed or failed. */
  async writesSettled(): Promise<void> {
    await Promise.all([...this.#writes]);
  }

  /**
   * How an upstream answer of `status` and `bytes` is kept: its TTLs, whether L2 takes it, and
   * how long it is fresh; undefined when it is not stored at all.
   */
  storage(
    slot: CacheSlot,
    status: number,
    bytes: number,
  ): { ttl: TtlPair; toL2: boolean; freshMs: number } | undefined {
    const ttl = ttlForStatus(status, slot.ttl, this.#opts.notFoundMs);
    if (!ttl) return undefined;
    const toL2 = this.l2 !== undefined && ttl.diskMs > 0 && bytes <= this.#opts.l2MaxEntryBytes;
    return { ttl, toL2, freshMs: lifetimeMs(ttl, toL2) };
  }

  /**
   * Stores an upstream answer in the tiers its class uses (undefined when it must not be
   * stored): in L1 at once, and in L2 by a write that is not waited for — `written` settles
   * when it has landed or failed (a failed write costs a later miss, never this answer).
   */
  #store(
    req: CacheSlot,
    res: UpstreamResponse,
  ): { entry: CacheEntry; written: Promise<void> } | undefined {
    const kept = this.storage(req, res.status, res.body.length);
    if (!kept) return undefined;
    const { ttl, toL2 } = kept;
    const now = Date.now();
    // A shield's copy is as old as it says: it expires here when it would there.
    const storedAt = now - (res.ageMs ?? 0);
    const expiresAt = storedAt + kept.freshMs;
    const entry: CacheEntry = {
      status: res.status,
      contentType: res.contentType,
      body: res.body,
      ...(res.location !== undefined ? { location: res.location } : {}),
      storedAt,
      expiresAt,
      staleUntil: res.status === 404 ? expiresAt : expiresAt + this.#opts.staleMs,
    };
    this.l1.set(req.key, poolOf(req.cls), entry, ttl.memoryMs, now);
    if (!this.l2 || !toL2) return { entry, written: WRITTEN };
    const written = this.l2.set(req.key, entry, entry.staleUntil - now).catch(() => undefined);
    this.#writes.add(written);
    written.then(() => this.#writes.delete(written));
    return { entry, written };
  }

  /**
   * Stale-if-error, the one place its rule lives: a stale entry (inside its stale window)
   * answers in place of a fetch that failed with `fwdStatus`, and is counted as such.
   */
  staleOnError(stale: CacheEntry, fwdStatus: number): Served {
    this.#opts.metrics.stale.error.inc();
    return { entry: stale, source: 'STALE', detail: 'stale-if-error', fwdStatus, stored: true };
  }

  /** After a fetch for `found`'s key failed with `err`: its stale copy served instead, or undefined when it has none. */
  staleIfError(found: Lookup, err: unknown): Served | undefined {
    return found.stale ? this.staleOnError(found.stale, failureStatus(err)) : undefined;
  }

  #transient(res: UpstreamResponse): CacheEntry {
    const now = Date.now();
    return { ...res, storedAt: now, expiresAt: now, staleUntil: now };
  }
}
