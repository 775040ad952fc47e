/**
 * L2: the shared Redis tier, on the request path. Reads and writes go to the main nodes, or to
 * the fallback nodes while the main ones are unreachable; when neither can be used the caller
 * carries on without L2. The admin walks (SCAN, clear, sizes, topology) are in l2-admin.ts.
 */
import type { Redis } from 'ioredis';
import { TiercacheError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/log.ts';
import type { RedisConfig } from '../config.ts';
import type { BreakerState } from './breaker.ts';
import { type CacheEntry, decodeEntry, encodeEntry } from './entry.ts';
import {
  BACKOFF_PREFIX,
  CLEAR_GENERATION_KEY,
  leaseKey,
  leaseSharesSlot,
  RATE_PREFIX,
} from './keys.ts';
import {
  type Recover,
  type RedisClient,
  RedisTarget,
  refusedCall,
  type SoftRead,
} from './redis-target.ts';

const EXTEND_LEASE =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
// A fixed window: the first request of a window starts its expiry; a counter that lost it
// (it cannot, but PTTL -1 would mean a counter that never resets) gets it back.
const COUNT_REQUEST =
  "local n = redis.call('incr', KEYS[1]) if n == 1 then redis.call('pexpire', KEYS[1], ARGV[1]) end local ttl = redis.call('pttl', KEYS[1]) if ttl < 0 then redis.call('pexpire', KEYS[1], ARGV[1]) ttl = tonumber(ARGV[1]) end return {n, ttl}";
/**
 * The miss path's one round trip: the entry when there is one, else the fetch lease taken in
 * the same step (1: taken by this caller, 0: another holds it). Atomic, so no entry can be
 * stored between the look and the lease. KEYS: entry, lease (same slot: leaseKey).
 */
const LOOK_OR_LEASE =
  "local v = redis.call('get', KEYS[1]) if v then return v end if redis.call('set', KEYS[2], ARGV[1], 'PX', ARGV[2], 'NX') then return 1 end return 0";
const SCRIPTS = { tcLookOrLease: { numberOfKeys: 2, lua: LOOK_OR_LEASE } };
type WithScripts = {
  tcLookOrLeaseBuffer(key: string, lease: string, owner: string, ms: string): Promise<unknown>;
};

/**
 * Below this read latency (ms) the look is a plain GET and a miss takes its lease in a second
 * step: a round trip that near costs less than running the script on every L2 hit (measured:
 * the script took the L2-hit path from 0.71× to 0.64× of a bare GET server). Far from Redis
 * round trips dominate, and the script saves one on every miss. Queueing on a busy event loop
 * stays well under it.
 */
const SCRIPT_LOOK_MIN_MS = 5;

/** What a look that may take the lease found (see RedisTier.readOrLease). */
export type LookLease = 'mine' | 'taken' | undefined;

const RELEASE_LEASE =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

export interface L2Hooks {
  onBreakerChange?: (target: string, state: BreakerState) => void;
  onNodeBreakerChange?: (target: string, node: string, state: BreakerState) => void;
  onError?: (target: string, op: string) => void;
  onSlowRead?: (target: string, op: string) => void;
}

const decodeStored = (raw: Buffer | null) => (raw ? decodeEntry(raw) : undefined);
/** A hot-path read whose late reply needs nothing done. */
const NOTHING_LATE: SoftRead<unknown> = {};

export class RedisTier {
  readonly targets: RedisTarget[];

  readonly #encoding: { deflate: boolean };

  constructor(cfg: RedisConfig, log: Logger, hooks: L2Hooks = {}) {
    this.#encoding = { deflate: cfg.compression === 'deflate' };
    const common = { ...cfg, log, ...hooks, mode: cfg.mode, scripts: SCRIPTS };
    this.targets = [new RedisTarget({ ...common, name: 'main', nodes: cfg.nodes })];
    if (cfg.fallbackNodes.length > 0) {
      this.targets.push(new RedisTarget({ ...common, name: 'fallback', nodes: cfg.fallbackNodes }));
    }
    for (const t of this.targets) t.start();
  }

  /** The target calls go to now: main while it is available, else the fallback. */
  active(): RedisTarget | undefined {
    return this.targets.find((t) => t.available);
  }

  // Not async (nor get below): each async layer adds a promise and a microtask to every L2 hit.
  /** Runs `fn` on the active target; `key` is the key it is about (its master's breaker decides). */
  #on<T, R = T>(
    op: string,
    write: boolean,
    key: string,
    fn: (c: RedisClient) => Promise<T>,
    map?: (reply: T) => R | PromiseLike<R>,
    recover?: Recover<R>,
    soft?: SoftRead<T>,
  ): Promise<R> {
    const target = this.active();
    if (!target)
      return refusedCall(
        new TiercacheError('L2_UNAVAILABLE', 'no Redis target is available'),
        recover,
      );
    return target.call(op, write, fn, map, recover, { key, soft });
  }

  /**
   * Reads `key` and hands `next` the entry (undefined when there is none, 'unavailable' when
   * L2 cannot answer, or not within the soft deadline) in the same promise step as Redis's
   * reply (no extra `then` on the L2 hit path).
   */
  read<R>(
    key: string,
    next: (found: CacheEntry | undefined | 'unavailable') => R | PromiseLike<R>,
  ): Promise<R> {
    return this.#on(
      'get',
      false,
      key,
      (c) => c.getBuffer(key),
      (raw) => next(decodeStored(raw)),
      () => next('unavailable'),
      NOTHING_LATE,
    );
  }

  /**
   * Whether a look for `key` should take its lease in the same round trip (`readOrLease`): its
   * lease shares its slot, and Redis is far enough for a round trip to cost more than the
   * script (SCRIPT_LOOK_MIN_MS). Otherwise a look is a `read` and a miss takes its lease in a
   * second step.
   */
  looksAndLeasesAtOnce(key: string): boolean {
    const target = this.active();
    // Reading from a nearby replica, a miss's lease step looks again on the master: the entry
    // another proxy stored there may not have reached the replica yet.
    if (target?.readsNearest) return leaseSharesSlot(key);
    return leaseSharesSlot(key) && (target?.readLatencyMs ?? 0) >= SCRIPT_LOOK_MIN_MS;
  }

  /**
   * Whether a request's first look should also take the lease (readOrLease): as
   * looksAndLeasesAtOnce, except when reads go to the nearest copy — the script runs on the
   * master, so the hit path's look is a plain read there. One look-up of the active target:
   * this is on every L2 look.
   */
  firstLookTakesLease(key: string): boolean {
    const target = this.active();
    return (
      !target?.readsNearest &&
      leaseSharesSlot(key) &&
      (target?.readLatencyMs ?? 0) >= SCRIPT_LOOK_MIN_MS
    );
  }

  /**
   * As `read`, and when there is no entry, takes the key's fetch lease in the same round trip
   * (for a key `looksAndLeasesAtOnce` allows): `next` gets the entry and 'mine' (this caller
   * holds the lease), 'taken' (another does) or undefined (an entry was found, or L2 cannot
   * answer).
   */
  readOrLease<R>(
    key: string,
    owner: string,
    leaseMs: number,
    next: (found: CacheEntry | undefined | 'unavailable', lease: LookLease) => R | PromiseLike<R>,
  ): Promise<R> {
    // Timed as a read: it is the hit path's look, the lease only what a miss adds to it.
    return this.#on(
      'get',
      false,
      key,
      (c) =>
        (c as unknown as WithScripts).tcLookOrLeaseBuffer(
          key,
          leaseKey(key),
          owner,
          String(Math.ceil(leaseMs)),
        ),
      (reply) =>
        Buffer.isBuffer(reply)
          ? next(decodeEntry(reply), undefined)
          : next(undefined, reply === 1 ? 'mine' : 'taken'),
      () => next('unavailable', undefined),
      // Reading from a nearby replica, this is a miss's step on the master, which may be far:
      // it gets the whole read timeout, not the soft deadline the replica's latency sets.
      this.active()?.readsNearest
        ? undefined
        : {
            // The caller went on without L2: a lease the late look took would hold other
            // replicas back for nothing.
            onLate: (reply) => {
              if (reply === 1) this.releaseLease(key, owner).catch(() => undefined);
            },
          },
    );
  }

  async set(key: string, entry: CacheEntry, ttlMs: number): Promise<void> {
    await this.#on('set', true, key, (c) =>
      c.set(key, encodeEntry(entry, this.#encoding), 'PX', Math.max(1, Math.ceil(ttlMs))),
    );
  }

  async delete(key: string): Promise<void> {
    await this.#on('del', true, key, (c) => c.unlink(key));
  }

  /** A shared upstream back-off deadline (ms since epoch), 0 when none is set. */
  async backoffUntil(upstream: string): Promise<number> {
    const key = `${BACKOFF_PREFIX}${upstream}`;
    return Number((await this.#on('backoff', false, key, (c) => c.get(key))) ?? 0);
  }

  /** Records a back-off deadline for every replica; it expires by itself when it has passed. */
  async holdBackoff(upstream: string, untilMs: number): Promise<void> {
    const key = `${BACKOFF_PREFIX}${upstream}`;
    const ms = Math.ceil(untilMs - Date.now());
    if (ms > 0) await this.#on('backoff', true, key, (c) => c.set(key, String(untilMs), 'PX', ms));
  }

  /** Counts one request of a client in its window: how many so far, and ms until it resets. */
  async countRequest(client: string, windowMs: number): Promise<{ current: number; ttl: number }> {
    const key = `${RATE_PREFIX}${client}`;
    const [current, ttl] = (await this.#on('rate', true, key, (c) =>
      c.eval(COUNT_REQUEST, 1, key, String(Math.ceil(windowMs))),
    )) as [number, number];
    return { current, ttl };
  }

  /** Takes the short cross-replica fetch lease for `key`; true when this replica holds it. */
  async acquireLease(key: string, owner: string, ms: number): Promise<boolean> {
    const lease = leaseKey(key);
    const ok = await this.#on('lease', true, lease, (c) =>
      c.set(lease, owner, 'PX', Math.ceil(ms), 'NX'),
    );
    return ok === 'OK';
  }

  /** Renews a lease this replica still holds (another's, or a lapsed one, is left alone). */
  async extendLease(key: string, owner: string, ms: number): Promise<void> {
    const lease = leaseKey(key);
    await this.#on('lease', true, lease, (c) =>
      c.eval(EXTEND_LEASE, 1, lease, owner, String(Math.ceil(ms))),
    );
  }

  async releaseLease(key: string, owner: string): Promise<void> {
    const lease = leaseKey(key);
    await this.#on('unlease', true, lease, (c) => c.eval(RELEASE_LEASE, 1, lease, owner));
  }

  /**
   * Runs one command on every target that answers (main and fallback): an unreachable one is
   * left out of the answer, keyed by target name.
   */
  async #onEveryTarget<T>(
    op: string,
    write: boolean,
    fn: (c: RedisClient) => Promise<T>,
  ): Promise<Record<string, T>> {
    const out: Record<string, T> = {};
    for (const t of this.targets) {
      try {
        out[t.name] = await t.call(op, write, fn);
      } catch {
        // unreachable now: what it missed is caught up with when it answers again
      }
    }
    return out;
  }

  /**
   * Publishes on the bus channel of every reachable target; returns how many it reached (an
   * unreachable one's replicas catch up through the clear generation).
   */
  async publish(channel: string, message: string): Promise<number> {
    return Object.keys(
      await this.#onEveryTarget('publish', true, (c) => c.publish(channel, message)),
    ).length;
  }

  /**
   * Moves the clear generation on, on every reachable target (a replica that missed the
   * invalidation's message sees it move and flushes its L1); returns the new value per target.
   */
  async bumpClearGeneration(): Promise<Record<string, string>> {
    return this.#onEveryTarget('incr', true, async (c) =>
      String(await c.incr(CLEAR_GENERATION_KEY)),
    );
  }

  /** The clear generation of every reachable target ("0" before the first clear). */
  async clearGenerations(): Promise<Record<string, string>> {
    return this.#onEveryTarget(
      'get',
      false,
      async (c) => (await c.get(CLEAR_GENERATION_KEY)) ?? '0',
    );
  }

  /** Master connections of the active target (empty while connecting). */
  masters(): Redis[] {
    return this.active()?.masters() ?? [];
  }

  async close(): Promise<void> {
    await Promise.all(this.targets.map((t) => t.close()));
  }
}
