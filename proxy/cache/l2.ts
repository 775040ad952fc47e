/**
 * L2: the shared Redis tier. Reads and writes go to the main nodes, or to the fallback nodes
 * while the main ones are unreachable; when neither can be used the caller carries on without
 * L2. Admin operations (SCAN, clear, sizes) run per master node with single-key commands,
 * never KEYS and never a cross-slot command.
 */
import type { Redis } from 'ioredis';
import { TiercacheError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/log.ts';
import { formatAddr } from '../../lib/redis/addr.ts';
import { formatRanges, isMaster, parseClusterNodes, slotCount } from '../../lib/redis/topology.ts';
import type { RedisConfig } from '../config.ts';
import type { BreakerState } from './breaker.ts';
import { type CacheEntry, decodeEntry, encodeEntry } from './entry.ts';
import { BACKOFF_PREFIX, CLEAR_GENERATION_KEY, ENTRY_PREFIX, leaseKey } from './keys.ts';
import { type Recover, type RedisClient, RedisTarget, refusedCall } from './redis-target.ts';

const EXTEND_LEASE =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
const RELEASE_LEASE =
  "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";
const SCAN_COUNT = 1000;

export interface L2Hooks {
  onBreakerChange?: (target: string, state: BreakerState) => void;
  onError?: (target: string, op: string) => void;
}

export interface L2Info {
  type: 'redis-cluster' | 'redis' | 'connecting';
  target: 'main' | 'fallback' | 'none';
  nodes: string[];
  masters: number;
  current_size: number;
  total_size: number;
  breaker: Record<string, BreakerState>;
}

/** What a clear of L2 did: keys deleted, keys that could not be, targets not reached. */
export interface L2Clear {
  deleted: number;
  failed: number;
  unreachable: string[];
}

/** One Redis node as this proxy sees it (for /cache/nodes and the dashboard). */
export interface L2NodeView {
  id: string;
  address: string;
  role: 'master' | 'replica' | 'standalone';
  /** For replicas: the master's id. */
  master_id?: string;
  /** Slot ranges, e.g. "0-5460" ("" for replicas; every key for a standalone node). */
  slots: string;
  slot_count: number;
  /** DBSIZE, or null when this proxy has no connection to the node. */
  keys: number | null;
  flags: string[];
}

export interface L2Topology {
  type: 'redis-cluster' | 'redis';
  target: 'main' | 'fallback';
  nodes: L2NodeView[];
}

const addressOf = (r: Redis) => formatAddr({ host: r.options.host!, port: r.options.port! });

const decodeStored = (raw: Buffer | null) => (raw ? decodeEntry(raw) : undefined);

export class RedisTier {
  readonly targets: RedisTarget[];

  constructor(cfg: RedisConfig, log: Logger, hooks: L2Hooks = {}) {
    const common = { ...cfg, log, ...hooks, mode: cfg.mode };
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
  #on<T, R = T>(
    op: string,
    write: boolean,
    fn: (c: RedisClient) => Promise<T>,
    map?: (reply: T) => R | PromiseLike<R>,
    recover?: Recover<R>,
  ): Promise<R> {
    const target = this.active();
    if (!target)
      return refusedCall(
        new TiercacheError('L2_UNAVAILABLE', 'no Redis target is available'),
        recover,
      );
    return target.call(op, write, fn, map, recover);
  }

  /**
   * Reads `key` and hands `next` the entry (undefined when there is none, 'unavailable' when
   * L2 cannot answer) in the same promise step as Redis's reply (no extra `then` on the L2 hit
   * path).
   */
  read<R>(
    key: string,
    next: (found: CacheEntry | undefined | 'unavailable') => R | PromiseLike<R>,
  ): Promise<R> {
    return this.#on(
      'get',
      false,
      (c) => c.getBuffer(key),
      (raw) => next(decodeStored(raw)),
      () => next('unavailable'),
    );
  }

  async set(key: string, entry: CacheEntry, ttlMs: number): Promise<void> {
    await this.#on('set', true, (c) =>
      c.set(key, encodeEntry(entry), 'PX', Math.max(1, Math.ceil(ttlMs))),
    );
  }

  async delete(key: string): Promise<void> {
    await this.#on('del', true, (c) => c.unlink(key));
  }

  /** A shared upstream back-off deadline (ms since epoch), 0 when none is set. */
  async backoffUntil(upstream: string): Promise<number> {
    return Number(
      (await this.#on('backoff', false, (c) => c.get(`${BACKOFF_PREFIX}${upstream}`))) ?? 0,
    );
  }

  /** Records a back-off deadline for every replica; it expires by itself when it has passed. */
  async holdBackoff(upstream: string, untilMs: number): Promise<void> {
    const ms = Math.ceil(untilMs - Date.now());
    if (ms > 0)
      await this.#on('backoff', true, (c) =>
        c.set(`${BACKOFF_PREFIX}${upstream}`, String(untilMs), 'PX', ms),
      );
  }

  /** Takes the short cross-replica fetch lease for `key`; true when this replica holds it. */
  async acquireLease(key: string, owner: string, ms: number): Promise<boolean> {
    const ok = await this.#on('lease', true, (c) =>
      c.set(leaseKey(key), owner, 'PX', Math.ceil(ms), 'NX'),
    );
    return ok === 'OK';
  }

  /** Renews a lease this replica still holds (another's, or a lapsed one, is left alone). */
  async extendLease(key: string, owner: string, ms: number): Promise<void> {
    await this.#on('lease', true, (c) =>
      c.eval(EXTEND_LEASE, 1, leaseKey(key), owner, String(Math.ceil(ms))),
    );
  }

  async releaseLease(key: string, owner: string): Promise<void> {
    await this.#on('unlease', true, (c) => c.eval(RELEASE_LEASE, 1, leaseKey(key), owner));
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

  /**
   * SCANs every master of `target` (the active one by default) for entry keys matching
   * `pattern` (a Redis glob after the entry prefix), yielding each batch with its node.
   */
  async *#batches(
    pattern: string,
    target = this.active(),
  ): AsyncGenerator<{ target: RedisTarget; node: Redis; keys: string[] }> {
    if (!target) throw new TiercacheError('L2_UNAVAILABLE', 'no Redis target is available');
    for (const node of target.masters()) {
      let cursor = '0';
      do {
        const [next, keys] = await target.call('scan', false, () =>
          node.scan(cursor, 'MATCH', `${ENTRY_PREFIX}${pattern}`, 'COUNT', SCAN_COUNT),
        );
        cursor = next;
        if (keys.length > 0) yield { target, node, keys };
      } while (cursor !== '0');
    }
  }

  /** Entry keys matching `pattern`, every master visited until `limit` keys are found. */
  async scan(pattern: string, limit: number): Promise<string[]> {
    const found: string[] = [];
    for await (const { keys } of this.#batches(pattern)) {
      found.push(...keys);
      if (found.length >= limit) return found.slice(0, limit);
    }
    return found;
  }

  /** How many entries match `pattern`. */
  async count(pattern: string): Promise<number> {
    let n = 0;
    for await (const { keys } of this.#batches(pattern)) n += keys.length;
    return n;
  }

  /**
   * Keys and bytes (MEMORY USAGE) of the entries matching `pattern`, grouped by the first of
   * `prefixes` each key starts with (display form, e.g. `crypto:prices:`). One SCAN walk.
   */
  async usage(
    pattern: string,
    prefixes: string[],
  ): Promise<Record<string, { keys: number; bytes: number }>> {
    const out = Object.fromEntries(prefixes.map((p) => [p, { keys: 0, bytes: 0 }]));
    for await (const { target, node, keys } of this.#batches(pattern)) {
      const sizes = await target.call('memory usage', false, () => {
        const pipe = node.pipeline();
        for (const k of keys) pipe.memory('USAGE', k, 'SAMPLES', '0');
        return pipe.exec();
      });
      for (const [i, key] of keys.entries()) {
        const shown = key.slice(ENTRY_PREFIX.length);
        const group = prefixes.find((p) => shown.startsWith(p));
        if (!group) continue;
        out[group]!.keys += 1;
        out[group]!.bytes += Number(sizes?.[i]?.[1] ?? 0);
      }
    }
    return out;
  }

  /**
   * Deletes the cache entries matching `pattern` (all of them by default), master by master,
   * one key per UNLINK — never a cross-slot command. Returns how many went.
   */
  /**
   * Deletes the entries matching `pattern` on every target, main and fallback (a replica that
   * fails over to the fallback must not find there what was cleared). Keys a node refused
   * (MOVED/ASK: their slot is moving) are deleted again through the cluster client, which
   * follows the redirect; what still failed is counted, and targets that could not be walked
   * are named.
   */
  async clear(pattern = '*'): Promise<L2Clear> {
    const out: L2Clear = { deleted: 0, failed: 0, unreachable: [] };
    for (const target of this.targets) {
      try {
        const counts = await this.#clearOn(target, pattern);
        out.deleted += counts.deleted;
        out.failed += counts.failed;
      } catch {
        out.unreachable.push(target.name);
      }
    }
    if (out.unreachable.length === this.targets.length)
      throw new TiercacheError('L2_UNAVAILABLE', 'no Redis target is available');
    return out;
  }

  async #clearOn(
    target: RedisTarget,
    pattern: string,
  ): Promise<{ deleted: number; failed: number }> {
    if (!target.available)
      throw new TiercacheError('L2_UNAVAILABLE', `Redis ${target.name} is unavailable`);
    let deleted = 0;
    let failed = 0;
    for await (const { node, keys } of this.#batches(pattern, target)) {
      const results = await target.call('unlink', true, () => {
        const pipe = node.pipeline();
        for (const k of keys) pipe.unlink(k);
        return pipe.exec();
      });
      const refused: string[] = [];
      for (const [i, [err, count]] of (results ?? []).entries()) {
        if (err) refused.push(keys[i]!);
        else deleted += Number(count);
      }
      for (const key of refused) {
        try {
          deleted += await target.call('unlink', true, (c) => c.unlink(key));
        } catch {
          failed += 1;
        }
      }
    }
    return { deleted, failed };
  }

  async info(): Promise<L2Info> {
    const target = this.active();
    const breaker = Object.fromEntries(this.targets.map((t) => [t.name, t.breaker.state]));
    const base = {
      nodes: (target ?? this.targets[0]!).nodes.map(formatAddr),
      breaker,
      target: target?.name ?? ('none' as const),
    };
    if (!target?.kind)
      return { ...base, type: 'connecting', masters: 0, current_size: 0, total_size: 0 };
    let size = 0;
    let bytes = 0;
    const masters = target.masters();
    for (const node of masters) {
      const [dbsize, memory] = await target.call('info', false, () =>
        Promise.all([node.dbsize(), node.info('memory')]),
      );
      size += dbsize;
      bytes += Number(/used_memory:(\d+)/.exec(memory)?.[1] ?? 0);
    }
    return {
      ...base,
      type: target.kind === 'cluster' ? 'redis-cluster' : 'redis',
      masters: masters.length,
      current_size: size,
      total_size: bytes,
    };
  }

  /** The nodes and slots of the active target as this proxy sees them, with each node's key count. */
  async topology(): Promise<L2Topology> {
    const target = this.active();
    const [first] = target?.masters() ?? [];
    if (!target?.kind || !first) throw new TiercacheError('L2_UNAVAILABLE', 'Redis is unavailable');
    const connections = new Map(target.connections().map((r) => [addressOf(r), r]));
    const keysOf = async (address: string) => {
      const conn = connections.get(address);
      return conn ? target.call('dbsize', false, () => conn.dbsize()).catch(() => null) : null;
    };
    if (target.kind === 'standalone') {
      const address = addressOf(first);
      return {
        type: 'redis',
        target: target.name,
        nodes: [
          {
            id: '-',
            address,
            role: 'standalone',
            slots: '',
            slot_count: 0,
            keys: await keysOf(address),
            flags: [],
          },
        ],
      };
    }
    const text = await target.call('cluster nodes', false, () => first.cluster('NODES'));
    const nodes = await Promise.all(
      parseClusterNodes(String(text)).map(
        async (n): Promise<L2NodeView> => ({
          id: n.id,
          address: n.addr,
          role: isMaster(n) ? 'master' : 'replica',
          ...(n.masterId ? { master_id: n.masterId } : {}),
          slots: formatRanges(n.slots),
          slot_count: slotCount(n.slots),
          keys: await keysOf(n.addr),
          // Only what is worth a look (fail, pfail, handshake, …): role and "myself" are not.
          flags: [...n.flags].filter((f) => !['master', 'slave', 'myself', 'noflags'].includes(f)),
        }),
      ),
    );
    nodes.sort((a, b) => a.address.localeCompare(b.address, 'en', { numeric: true }));
    return { type: 'redis-cluster', target: target.name, nodes };
  }

  /** Master connections of the active target (empty while connecting). */
  masters(): Redis[] {
    return this.active()?.masters() ?? [];
  }

  async close(): Promise<void> {
    await Promise.all(this.targets.map((t) => t.close()));
  }
}
