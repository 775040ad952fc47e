/**
 * The crypto market-data upstream (CoinGecko-compatible): the coin list that maps symbols to
 * ids, batched simple prices, and the global market indicators. The API key goes in a header
 * server-side only; cache keys are grouped by category (`tc:crypto:<category>:…`) so each
 * category can be listed and cleared on its own.
 */

import { TiercacheError } from '../../lib/errors.ts';
import { cacheKey, canonicalQuery, checkPath, splitTarget } from '../cache/keys.ts';
import type { TtlPair } from '../cache/policy.ts';
import { classifyCoingecko } from '../crypto/endpoints.ts';
import type { HttpUpstream } from './http.ts';
import type { Shield } from './shield.ts';
import { requestsByUrl, type UpstreamRequest, type UpstreamResponse } from './types.ts';

export const COINGECKO_API = 'https://api.coingecko.com/api/v3';
/** Where the CoinGecko-compatible pass-through answers: clients set their base URL to it. */
export const API_PREFIX = '/api/v3';
export const CRYPTO_CATEGORIES = ['prices', 'charts', 'analysis', 'indicators'] as const;
export type CryptoCategory = (typeof CRYPTO_CATEGORIES)[number];

export const cryptoKey = (category: CryptoCategory | 'meta', rest: string) =>
  `tc:crypto:${category}:${rest}`;

export interface CryptoOptions {
  apiUrl: string;
  apiKey: string | undefined;
  ttl: Record<string, TtlPair>;
  http: HttpUpstream;
  /** The upper-tier proxy asked first (SHIELD_URL), if any. */
  shield?: Shield | undefined;
  /** How many client URLs keep their built request (requestsKeptFor). */
  requestsKept: number;
}

export class CryptoUpstream {
  readonly #opts: CryptoOptions;

  /**
   * The cacheable request for a client's CoinGecko API URL (`/api/v3/<path>?<query>`, as the
   * official clients send it): the path checked, the query sorted and stripped of any key the
   * client sent (ours goes in a header), cached under its endpoint class's TTL and category.
   * Kept by URL, as TMDB's are (an L1 hit then parses nothing).
   */
  readonly apiRequest: (url: string) => UpstreamRequest;

  constructor(opts: CryptoOptions) {
    this.#opts = opts;
    this.apiRequest = requestsByUrl((url) => {
      const [raw, rawQuery] = splitTarget(url);
      const path = checkPath(raw.slice(API_PREFIX.length));
      const endpoint = classifyCoingecko(path);
      if (endpoint === 'private')
        throw new TiercacheError(
          'NOT_FOUND',
          `${API_PREFIX}${path} is not served through the proxy`,
        );
      const query = canonicalQuery(new URLSearchParams(rawQuery));
      return {
        // tc:crypto:<category>:v3/<path>?<query>, as cryptoKey writes keys (long ones hashed).
        key: cacheKey(`crypto:${endpoint.category}`, `v3${path}`, query),
        cls: endpoint.ttl,
        ttl: this.ttl(endpoint.ttl),
        fetch: () => this.#get(path, query),
      };
    }, opts.requestsKept);
  }

  ttl(cls: string): TtlPair {
    return this.#opts.ttl[cls]!;
  }

  async #get(
    path: string,
    query: Record<string, string> | URLSearchParams = {},
  ): Promise<UpstreamResponse> {
    const { apiUrl, apiKey, http, shield } = this.#opts;
    const params = query instanceof URLSearchParams ? query : Object.entries(query);
    // The shield serves the same CoinGecko API under its own API_PREFIX.
    const fromShield = await shield?.ask(API_PREFIX + path, params);
    if (fromShield) return fromShield;
    const url = new URL(apiUrl + path);
    for (const [k, v] of params) url.searchParams.append(k, v);
    const headers: Record<string, string> = {};
    if (apiKey)
      headers[url.hostname.startsWith('pro-api.') ? 'x-cg-pro-api-key' : 'x-cg-demo-api-key'] =
        apiKey;
    return http.get(url, headers);
  }

  /** A cacheable request for one upstream path, cached under its category's key. */
  #cached(category: 'meta' | 'indicators', name: string, path: string): UpstreamRequest {
    return {
      key: cryptoKey(category, name),
      cls: category,
      ttl: this.ttl(category),
      fetch: () => this.#get(path),
    };
  }

  coinList(): UpstreamRequest {
    return this.#cached('meta', 'coins', '/coins/list');
  }

  /** Market data, with market-cap ranks, of up to 250 coins in one call. */
  markets(ids: string[]): Promise<UpstreamResponse> {
    return this.#get('/coins/markets', {
      vs_currency: 'usd',
      ids: ids.join(','),
      per_page: '250',
    });
  }

  /** One call for every id, as CoinGecko's simple/price takes them. */
  simplePrice(ids: string[], vs: string): Promise<UpstreamResponse> {
    return this.#get('/simple/price', {
      ids: ids.join(','),
      vs_currencies: vs,
      include_24hr_change: 'true',
      include_24hr_vol: 'true',
      include_market_cap: 'true',
    });
  }

  /** Price points between two times (CoinGecko picks 5-minute, hourly or daily steps by span). */
  marketChartRange(
    id: string,
    vs: string,
    fromMs: number,
    toMs: number,
  ): Promise<UpstreamResponse> {
    return this.#get(`/coins/${encodeURIComponent(id)}/market_chart/range`, {
      vs_currency: vs,
      from: String(Math.floor(fromMs / 1000)),
      to: String(Math.ceil(toMs / 1000)),
    });
  }

  global(): UpstreamRequest {
    return this.#cached('indicators', 'global', '/global');
  }
}
