/** What every upstream (TMDB, crypto market data, demo) gives the cache layer. */
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

/** One cacheable request, resolved by an upstream from the client's path and query. */
export interface UpstreamRequest extends CacheSlot {
  /** Calls the upstream; rejects with a TiercacheError when it cannot. */
  fetch: () => Promise<UpstreamResponse>;
}
