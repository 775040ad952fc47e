/**
 * Pure cache policy: which upstream answers are stored, for how long in each tier, and how
 * fresh a stored entry is. No I/O here, so every rule is unit-tested without servers.
 */

export interface TtlPair {
  /** L1 time-to-live in ms; 0 = not kept in L1. */
  memoryMs: number;
  /** L2 time-to-live in ms; 0 = not kept in L2. */
  diskMs: number;
}

/**
 * Statuses whose answers are cacheable as they are (RFC 9111 heuristically cacheable ones we
 * meet). Not 3xx: an entry keeps no headers, and a redirect without its Location is broken.
 */
const STORABLE = new Set([200, 203, 204, 410]);

/**
 * How long to keep an upstream answer, or undefined when it must not be stored:
 * 3xx (passed through with their Location), 401/403 (credentials), 429 (quota) and 5xx are
 * never cached; 404 is cached briefly.
 */
export function ttlForStatus(
  status: number,
  ttl: TtlPair,
  notFoundMs: number,
): TtlPair | undefined {
  if (STORABLE.has(status)) return ttl.memoryMs > 0 || ttl.diskMs > 0 ? ttl : undefined;
  if (status === 404) {
    const brief = {
      memoryMs: ttl.memoryMs > 0 ? Math.min(notFoundMs, ttl.memoryMs) : 0,
      diskMs: ttl.diskMs > 0 ? Math.min(notFoundMs, ttl.diskMs) : 0,
    };
    return brief.memoryMs > 0 || brief.diskMs > 0 ? brief : undefined;
  }
  return undefined;
}

/** Freshness lifetime of a new entry: the longest tier it lives in decides when it expires. */
export function lifetimeMs(ttl: TtlPair, l2InUse: boolean): number {
  return l2InUse && ttl.diskMs > 0 ? Math.max(ttl.diskMs, ttl.memoryMs) : ttl.memoryMs;
}

export type Freshness = 'fresh' | 'stale' | 'dead';

export function freshness(expiresAt: number, staleUntil: number, now: number): Freshness {
  if (now < expiresAt) return 'fresh';
  return now < staleUntil ? 'stale' : 'dead';
}

/** Seconds since the entry was stored, as the HTTP Age header wants it. */
export function ageSeconds(storedAt: number, now: number): number {
  return Math.max(0, Math.floor((now - storedAt) / 1000));
}

/** Remaining freshness in whole seconds; negative once stale (RFC 9211 `ttl`). */
export function ttlSeconds(expiresAt: number, now: number): number {
  return Math.floor((expiresAt - now) / 1000);
}
