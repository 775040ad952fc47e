/** What every upstream (TMDB, crypto market data, demo) gives the cache layer. */
import { LRUCache } from 'lru-cache';
import type { TtlPair } from '../cache/policy.ts';

export interface UpstreamResponse {
  status: number;
  contentType: string;
  body: Buffer;
  /** A redirect's target, passed on to the client (redirects are never stored). */
  location?: string | undefined;
  /** A shield's copy (shield.ts): how old it already is (its Age), so it expires no later there. */
  ageMs?: number | undefined;
  /** Where the shield had it from (its X-Cache: L1, L2, STALE or MISS). */
  shieldCache?: string | undefined;
  /** The answer came through the shield tier. */
  viaShield?: boolean | undefined;
}

/** Where an answer lives in the cache: its key and content class. */
export interface CacheSlot {
  /** Cache key (credential-free). */
  key: string;
  /** Content class: decides the TTLs and the L1 pool. */
  cls: string;
  ttl: TtlPair;
}

/**
 * How many client URLs keep their built request: one per 2 KiB of L1 (an L1 of that many
 * typical entries then never rebuilds a request for a URL it still holds), at least 10 000.
 * A kept request costs a few hundred bytes, a fifth or less of what its L1 entry costs.
 */
export function requestsKeptFor(l1MaxBytes: number): number {
  return Math.max(10_000, Math.ceil(l1MaxBytes / 2048));
}

/**
 * `build` memoised by client URL: a hit's URL has nearly always been seen, and parsing,
 * checking and sorting its query takes ~2.5 µs of a ~60 µs hit. A request holds no per-call
 * state; a URL `build` throws for (a bad path) is not kept.
 */
export function requestsByUrl(
  build: (url: string) => UpstreamRequest,
  kept: number,
): (url: string) => UpstreamRequest {
  const byUrl = new LRUCache<string, UpstreamRequest>({ max: kept });
  return (url) => {
    let request = byUrl.get(url);
    if (!request) {
      request = build(url);
      byUrl.set(url, request);
    }
    return request;
  };
}

/** One cacheable request, resolved by an upstream from the client's path and query. */
export interface UpstreamRequest extends CacheSlot {
  /** Calls the upstream; rejects with a TiercacheError when it cannot. */
  fetch: () => Promise<UpstreamResponse>;
}
