/** What every upstream (TMDB, crypto market data, demo) gives the cache layer. */
import { LRUCache } from 'lru-cache';
import type { TtlPair } from '../cache/policy.ts';

export interface UpstreamResponse {
  status: number;
  contentType: string;
  body: Buffer;
  /** A redirect's target, passed on to the client (redirects are never stored). */
  location?: string | undefined;
}

/** Where an answer lives in the cache: its key and content class. */
export interface CacheSlot {
  /** Cache key (credential-free). */
  key: string;
  /** Content class: decides the TTLs and the L1 pool. */
  cls: string;
  ttl: TtlPair;
}

/** How many client URLs keep their built request (a hot set; each costs a few hundred bytes). */
const REQUESTS_KEPT = 10_000;

/**
 * `build` memoised by client URL: a hit's URL has nearly always been seen, and parsing,
 * checking and sorting its query takes ~2.5 µs of a ~60 µs hit. A request holds no per-call
 * state; a URL `build` throws for (a bad path) is not kept.
 */
export function requestsByUrl(
  build: (url: string) => UpstreamRequest,
): (url: string) => UpstreamRequest {
  const byUrl = new LRUCache<string, UpstreamRequest>({ max: REQUESTS_KEPT });
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
