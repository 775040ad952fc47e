/**
 * Cache management (seed 000): /cache/info, /cache/clear, /cache/keys, /cache/search, plus
 * /cache/invalidate, and seed 002's /api/cache/stats and /api/cache/clear.
 * Every route here needs the admin token (keys name what users looked up); clears reach every
 * replica's L1 through the bus.
 */
import type { FastifyInstance } from 'fastify';
import { TiercacheError } from '../../lib/errors.ts';
import type { InvalidationBus } from '../cache/bus.ts';
import { decodeCursor, encodeCursor, type KeyPage, listKeys } from '../cache/key-listing.ts';
import { displayKey, ENTRY_PREFIX, globEscape } from '../cache/keys.ts';
import type { L2Admin } from '../cache/l2-admin.ts';
import type { TieredCache } from '../cache/tiered.ts';
import type { ProxyConfig } from '../config.ts';
import type { StatsReader } from '../stats.ts';
import { CRYPTO_CATEGORIES, type CryptoCategory, cryptoKey } from '../upstreams/crypto.ts';
import { adminGuard } from './admin-auth.ts';

export interface CacheAdminOptions {
  config: ProxyConfig;
  cache: TieredCache;
  /** L2's admin walks; undefined without L2. */
  l2: L2Admin | undefined;
  bus: InvalidationBus | undefined;
  stats: StatsReader;
}

/** How long one walk of L2 for per-category sizes is reused by /api/cache/stats. */
const L2_USAGE_REUSE_MS = 2000;

/** One page of keys: at most 1000, and a cursor (opaque) to the next. */
const pageProperties = {
  limit: { type: 'integer', minimum: 1, maximum: 1000, default: 10 },
  cursor: { type: 'string', minLength: 1, maxLength: 4096 },
} as const;

/** The page in the answer's shape: `cursor` is null when the walk is done. */
const pageReply = (page: KeyPage) => ({
  keys: page.rows,
  cursor: page.next ? encodeCursor(page.next) : null,
  has_more: page.next !== undefined,
  ...(page.l2Error ? { l2_error: page.l2Error } : {}),
});

export async function cacheAdminRoutes(
  app: FastifyInstance,
  opts: CacheAdminOptions,
): Promise<void> {
  const { cache, l2: l2Admin, bus, config, stats } = opts;
  const guard = adminGuard(config.adminToken);

  // Reads that show keys, topology or usage need the admin token too (only /health, /ready,
  // /metrics, /status and /stats stay open): cache keys name what users looked up.
  const admin = { preHandler: guard };

  app.get('/cache/info', admin, async () => {
    const l1 = cache.l1.stats();
    const s = await stats.read();
    const l2 = l2Admin
      ? await l2Admin.info().catch((err: Error) => ({ type: 'unavailable', error: err.message }))
      : { type: 'disabled' };
    return {
      cache_enabled: true,
      architecture: cache.l2
        ? 'L1 (Memory) + L2 (Redis Cluster) + L3 (Upstream)'
        : 'L1 (Memory) + L3 (Upstream)',
      region: config.region,
      memory_cache: {
        hit_rate: s.l1_hit_rate,
        current_size: l1.entries + l1.imageEntries,
        bytes: l1.bytes + l1.imageBytes,
        max_bytes: l1.maxBytes + l1.imageMaxBytes,
        json: { entries: l1.entries, bytes: l1.bytes, max_bytes: l1.maxBytes },
        images: { entries: l1.imageEntries, bytes: l1.imageBytes, max_bytes: l1.imageMaxBytes },
      },
      l2_cache: { ...l2, hit_rate: s.l2_hit_rate },
      ttl_minutes: Object.fromEntries(
        Object.entries(config.ttl).map(([cls, t]) => [
          cls,
          { memory: t.memoryMs / 60_000, disk: t.diskMs / 60_000 },
        ]),
      ),
    };
  });

  /** The Redis nodes and slots as this proxy sees them, with keys per node. */
  app.get('/cache/nodes', admin, async () => {
    if (!l2Admin) return { type: 'disabled', nodes: [] };
    return l2Admin.topology();
  });

  const cursorOf = (text: string | undefined) => (text ? decodeCursor(text) : undefined);

  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/cache/keys',
    { ...admin, schema: { querystring: { type: 'object', properties: pageProperties } } },
    async (req) => {
      const { limit, cursor } = req.query;
      await cache.writesSettled(); // this replica's answers are in L2 before it is listed
      const page = await listKeys(cache.l1, l2Admin, { limit, cursor: cursorOf(cursor) });
      return { ...pageReply(page), limit };
    },
  );

  app.get<{ Querystring: { q: string; limit: number; cursor?: string } }>(
    '/cache/search',
    {
      ...admin,
      schema: {
        querystring: {
          type: 'object',
          required: ['q'],
          properties: {
            q: { type: 'string', minLength: 1, maxLength: 256 },
            ...pageProperties,
            limit: { ...pageProperties.limit, default: 100 },
          },
        },
      },
    },
    async (req) => {
      const { q, limit, cursor } = req.query;
      await cache.writesSettled();
      const page = await listKeys(cache.l1, l2Admin, { term: q, limit, cursor: cursorOf(cursor) });
      return { query: q, ...pageReply(page), count: page.rows.length };
    },
  );

  /**
   * L2 keys and bytes per crypto category: one SCAN walk over the crypto entries, reused for
   * a few seconds so a dashboard polling every two seconds does not walk a large L2 each time.
   */
  const cryptoPrefixes = CRYPTO_CATEGORIES.map((c) => displayKey(cryptoKey(c, '')));
  let l2Usage:
    | { at: number; value: Promise<Record<string, { keys: number; bytes: number }>> }
    | undefined;
  const l2UsageByCategory = () => {
    if (!l2Admin) return Promise.resolve(undefined);
    if (!l2Usage || Date.now() - l2Usage.at > L2_USAGE_REUSE_MS) {
      l2Usage = { at: Date.now(), value: l2Admin.usage('crypto:*', cryptoPrefixes) };
    }
    return l2Usage.value.catch(() => null);
  };

  type ClearQuery = {
    type?: 'all' | 'memory' | 'l2';
    category?: CryptoCategory;
    prefix?: string;
  };
  const clearL2 = async (pattern?: string) => {
    if (!l2Admin) return { deleted: 0, failed: 0, unreachable: [] };
    // Answers this replica already sent may still be on their way into L2 (written behind):
    // they land first, so a clear after an answer always removes it.
    await cache.writesSettled();
    try {
      return await l2Admin.clear(pattern);
    } catch (err) {
      throw new TiercacheError(
        'L2_UNAVAILABLE',
        `L2 could not be cleared: ${(err as Error).message}`,
      );
    }
  };
  /**
   * Clears a tier (memory on every replica, and/or L2): everything, one crypto category, or
   * the keys starting with a prefix (as /cache/keys shows them, e.g. `tmdb:/3/search/`).
   * Both tiers: every L1 is cleared first (nobody keeps serving it), then L2, then every L1
   * again — a replica that missed L1 while L2 was being cleared may have refilled it from an
   * entry not yet deleted.
   */
  const clearHandler = async (req: { query: ClearQuery }) => {
    const { category, prefix: shownPrefix } = req.query;
    if (category && shownPrefix !== undefined)
      throw new TiercacheError('BAD_REQUEST', 'give category or prefix, not both');
    const type = req.query.type ?? 'all';
    const result: Record<string, unknown> = {
      type,
      ...(category ? { category } : {}),
      ...(shownPrefix !== undefined ? { prefix: shownPrefix } : {}),
    };
    const prefix = category
      ? cryptoKey(category, '')
      : shownPrefix !== undefined
        ? ENTRY_PREFIX + shownPrefix
        : undefined;
    const msg = prefix ? ({ action: 'prefix', prefix } as const) : ({ action: 'clear' } as const);
    const clearMemory = async () => {
      const cleared = prefix ? cache.l1.deletePrefix(prefix) : cache.clearMemory();
      result.memory_cleared = Number(result.memory_cleared ?? 0) + cleared;
      const notified = bus ? (await bus.publish(msg)) > 0 : false;
      result.replicas_notified = (result.replicas_notified ?? true) && notified;
    };
    if (type === 'memory' || type === 'all') await clearMemory();
    if (type === 'l2' || type === 'all') {
      const l2 = await clearL2(prefix ? `${globEscape(displayKey(prefix))}*` : undefined);
      result.l2_cleared = l2.deleted;
      if (l2.failed > 0) result.l2_failed = l2.failed;
      if (l2.unreachable.length > 0) result.l2_unreachable = l2.unreachable;
      if (type === 'all') await clearMemory();
    }
    l2Usage = undefined; // after the clear: a walk started earlier may have seen the keys
    return result;
  };
  const clearSchema = {
    preHandler: guard,
    schema: {
      querystring: {
        type: 'object',
        properties: {
          type: { type: 'string', enum: ['all', 'memory', 'l2'] },
          category: { type: 'string', enum: [...CRYPTO_CATEGORIES] },
          prefix: { type: 'string', minLength: 1, maxLength: 1024 },
        },
      },
    },
  };
  app.post<{ Querystring: ClearQuery }>('/cache/clear', clearSchema, clearHandler);
  app.post<{ Querystring: ClearQuery }>('/api/cache/clear', clearSchema, clearHandler);

  app.post<{ Querystring: { key: string } }>(
    '/cache/invalidate',
    {
      preHandler: guard,
      schema: {
        querystring: {
          type: 'object',
          required: ['key'],
          properties: { key: { type: 'string', minLength: 1, maxLength: 2048 } },
        },
      },
    },
    async (req) => {
      const key = ENTRY_PREFIX + req.query.key;
      cache.l1.delete(key);
      await cache.writesSettled(); // as for a clear: a write behind an answer lands first
      if (cache.l2) await cache.l2.delete(key);
      l2Usage = undefined;
      const notified = bus ? (await bus.publish({ action: 'delete', keys: [key] })) > 0 : false;
      return { invalidated: req.query.key, replicas_notified: notified };
    },
  );

  /**
   * Seed 002's statistics: hit rates overall and per cache category (TMDB's json, image and
   * search classes, the crypto categories), with keys and bytes per tier for the crypto ones.
   */
  app.get('/api/cache/stats', admin, async () => {
    const lookups = stats.categories();
    const l2 = await l2UsageByCategory();
    const categories: Record<string, unknown> = {};
    for (const [i, c] of CRYPTO_CATEGORIES.entries()) {
      const l1 = cache.l1.usage(cryptoKey(c, ''));
      // 0 without L2, null while L2 cannot be read.
      const inL2 = l2 === undefined ? { keys: 0, bytes: 0 } : (l2?.[cryptoPrefixes[i]!] ?? null);
      categories[c] = {
        ...(lookups[c] ?? stats.empty()),
        l1_keys: l1.entries,
        l1_bytes: l1.bytes,
        l2_keys: inL2?.keys ?? null,
        l2_bytes: inL2?.bytes ?? null,
      };
    }
    for (const [c, counts] of Object.entries(lookups)) categories[c] ??= counts;
    return { ...(await stats.read()), categories, upstreams: await stats.upstreams() };
  });
}
