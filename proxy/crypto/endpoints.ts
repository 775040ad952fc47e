/**
 * CoinGecko API v3 endpoints by how long their answers may be kept: the pass-through
 * (`/api/v3/*`) caches each under the TTL of its class and the cache category it belongs to,
 * so `/cache/clear?category=prices` clears raw price answers too. Pure: unit-tested.
 */
import type { CryptoCategory } from '../upstreams/crypto.ts';

export interface EndpointClass {
  /** TTL class (a key of ProxyConfig.ttl). */
  ttl: 'prices' | 'charts-open' | 'charts-closed' | 'indicators' | 'meta';
  /** Cache category the entry is listed and cleared under. */
  category: CryptoCategory | 'meta';
}

/** Lists of ids, currencies and platforms: they change a few times a day. */
const META =
  /^\/(?:coins\/list|coins\/categories\/list|simple\/supported_vs_currencies|asset_platforms|exchanges\/list|derivatives\/exchanges\/list|nfts\/list|token_lists\/[^/]+\/all\.json)$/;
/** Price points up to now: the open candle's TTL. */
const CHART =
  /^\/coins\/[^/]+\/(?:market_chart(?:\/range)?|ohlc(?:\/range)?|contract\/[^/]+\/market_chart(?:\/range)?)$/;
/** A coin on a past date: closed, it never changes. */
const HISTORY = /^\/coins\/[^/]+\/history$/;

/**
 * Endpoints that describe the API key itself (its plan and usage): the proxy's key, not the
 * caller's business and not to be shared from a cache.
 */
const KEY_ENDPOINT = /^\/key$/;

/** The class of an API path (after `/api/v3`), or 'private' for one never cached nor served. */
export function classifyCoingecko(path: string): EndpointClass | 'private' {
  if (KEY_ENDPOINT.test(path)) return 'private';
  if (path.startsWith('/simple/') && !META.test(path)) return { ttl: 'prices', category: 'prices' };
  if (META.test(path)) return { ttl: 'meta', category: 'meta' };
  if (CHART.test(path)) return { ttl: 'charts-open', category: 'charts' };
  if (HISTORY.test(path)) return { ttl: 'charts-closed', category: 'charts' };
  // Markets, global figures, coin pages, trending, exchanges, on-chain data: minutes.
  return { ttl: 'indicators', category: 'indicators' };
}
