/**
 * The admin side of L2: walks over every master (SCAN pages, counts, sizes, clears) and the
 * topology as this proxy sees it. Single-key commands per master node, never KEYS and never a
 * cross-slot command; kept apart from the request path in l2.ts.
 */
import type { Redis } from 'ioredis';
import { TiercacheError } from '../../lib/errors.ts';
import { formatAddr } from '../../lib/redis/addr.ts';
import { formatRanges, isMaster, parseClusterNodes, slotCount } from '../../lib/redis/topology.ts';
import type { BreakerState } from './breaker.ts';
import { ENTRY_PREFIX } from './keys.ts';
import type { RedisTier } from './l2.ts';
import type { RedisTarget } from './redis-target.ts';

const SCAN_COUNT = 1000;
/** SCAN calls one page may make before it answers with what it found (MATCH may filter most). */
const MAX_SCANS_PER_PAGE = 50;

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

/** Where a walk over L2's entries stands: a master (by address order), its SCAN cursor, and
 * how many keys of that cursor's batch were handed out already. */
export interface ScanPosition {
  node: number;
  cursor: string;
  skip: number;
}

/** One page of a walk: the keys, and where the next page starts (undefined: the walk is done). */
export interface ScanPage {
  keys: string[];
  next: ScanPosition | undefined;
}

const nextNode = (at: ScanPosition): ScanPosition => ({ node: at.node + 1, cursor: '0', skip: 0 });

const addressOf = (r: Redis) => formatAddr({ host: r.options.host!, port: r.options.port! });

export class L2Admin {
  readonly #tier: RedisTier;

  constructor(tier: RedisTier) {
    this.#tier = tier;
  }

  /**
   * Up to `limit` entry keys matching `pattern` from `from` on (the start by default), masters
   * in address order. A batch SCAN hands back at once is split over pages with `skip`, so a page
   * never holds more than `limit`; as with SCAN, a key present for the whole walk is listed.
   */
  async page(pattern: string, limit: number, from?: ScanPosition): Promise<ScanPage> {
    const target = this.#tier.active();
    if (!target) throw new TiercacheError('L2_UNAVAILABLE', 'no Redis target is available');
    const masters = [...target.masters()].sort((a, b) =>
      addressOf(a).localeCompare(addressOf(b), 'en', { numeric: true }),
    );
    const keys: string[] = [];
    let at: ScanPosition | undefined = from ?? { node: 0, cursor: '0', skip: 0 };
    for (let scans = 0; at && scans < MAX_SCANS_PER_PAGE && keys.length < limit; scans++) {
      const node: Redis | undefined = masters[at.node];
      if (!node) return { keys, next: undefined };
      const { cursor, skip } = at;
      const scanned = (): Promise<[string, string[]]> =>
        node.scan(cursor, 'MATCH', `${ENTRY_PREFIX}${pattern}`, 'COUNT', SCAN_COUNT);
      const [following, batch] = await target.call('scan', false, scanned);
      const fresh = batch.slice(skip);
      const room = limit - keys.length;
      keys.push(...fresh.slice(0, room));
      if (fresh.length > room) return { keys, next: { ...at, skip: skip + room } };
      at = following === '0' ? nextNode(at) : { node: at.node, cursor: following, skip: 0 };
    }
    return { keys, next: at && at.node < masters.length ? at : undefined };
  }

  /** Which of `keys` L2 holds (one EXISTS each; the cluster client routes them by slot). */
  async holds(keys: string[]): Promise<Set<string>> {
    const target = this.#tier.active();
    if (!target) throw new TiercacheError('L2_UNAVAILABLE', 'no Redis target is available');
    const found = await target.call('exists', false, (c) =>
      Promise.all(keys.map((k) => c.exists(k))),
    );
    return new Set(keys.filter((_, i) => found[i] === 1));
  }

  /**
   * SCANs every master of `target` (the active one by default) for entry keys matching
   * `pattern` (a Redis glob after the entry prefix), yielding each batch with its node.
   */
  async *#batches(
    pattern: string,
    target = this.#tier.active(),
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
   * Deletes the entries matching `pattern` on every target, main and fallback (a replica that
   * fails over to the fallback must not find there what was cleared). Keys a node refused
   * (MOVED/ASK: their slot is moving) are deleted again through the cluster client, which
   * follows the redirect; what still failed is counted, and targets that could not be walked
   * are named.
   */
  async clear(pattern = '*'): Promise<L2Clear> {
    const out: L2Clear = { deleted: 0, failed: 0, unreachable: [] };
    for (const target of this.#tier.targets) {
      try {
        const counts = await this.#clearOn(target, pattern);
        out.deleted += counts.deleted;
        out.failed += counts.failed;
      } catch {
        out.unreachable.push(target.name);
      }
    }
    if (out.unreachable.length === this.#tier.targets.length)
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
    const target = this.#tier.active();
    const breaker = Object.fromEntries(this.#tier.targets.map((t) => [t.name, t.breaker.state]));
    const base = {
      nodes: (target ?? this.#tier.targets[0]!).nodes.map(formatAddr),
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
    const target = this.#tier.active();
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
}
