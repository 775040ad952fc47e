/**
 * The TMDB upstream: maps client paths to TMDB URLs, injects the credential server-side
 * (v3 `api_key` query parameter, or a v4 read token as a Bearer header) and classifies
 * content for the TTL policy. The credential never reaches a cache key, a log or a response.
 */

import { cacheKey, canonicalQuery, checkPath, splitTarget } from '../cache/keys.ts';
import type { TtlPair } from '../cache/policy.ts';
import type { HttpUpstream } from './http.ts';
import type { Shield } from './shield.ts';
import { requestsByUrl, type UpstreamRequest, type UpstreamResponse } from './types.ts';

export type TmdbClass = 'json' | 'image' | 'search';

export const TMDB_API_ORIGIN = 'https://api.themoviedb.org';
export const TMDB_IMAGE_ORIGIN = 'https://image.tmdb.org';

/** v4 read access tokens are JWTs; v3 keys are 32 hex characters. */
export function isV4Token(key: string): boolean {
  return /^eyJ[\w-]+\.[\w-]+\.[\w-]+$/.test(key);
}

/** A TMDB user's own requests: their auth flow, their account, or anything with a session. */
const PRIVATE_PATH = /^\/3\/(?:authentication|account)(?:[/?]|$)/;
const SESSION_IN_QUERY = /[?&](?:session_id|guest_session_id|request_token)=/i;

/**
 * Whether a client URL is a user's own request: never cached (its answer is that user's, and
 * the session would end up in a key), only passed through with the session.
 */
export function isPrivateTmdbUrl(url: string): boolean {
  return PRIVATE_PATH.test(url) || (url.includes('?') && SESSION_IN_QUERY.test(url));
}

export function classifyTmdb(path: string): TmdbClass {
  if (path.startsWith('/t/p/')) return 'image';
  if (path.startsWith('/3/search/')) return 'search';
  return 'json';
}

export interface TmdbOptions {
  apiKey: string | undefined;
  apiUrl: string;
  imageUrl: string;
  ttl: Record<string, TtlPair>;
  http: HttpUpstream;
  /** The upper-tier proxy asked first (SHIELD_URL), if any. */
  shield?: Shield | undefined;
  /** How many client URLs keep their built request (requestsKeptFor). */
  requestsKept: number;
}

export class TmdbUpstream {
  readonly #opts: TmdbOptions;
  /** The request for a client URL (path and query as sent); throws BAD_REQUEST for a bad path. */
  readonly requestForUrl: (url: string) => UpstreamRequest;

  constructor(opts: TmdbOptions) {
    this.#opts = opts;
    this.requestForUrl = requestsByUrl((url) => {
      const [path, query] = splitTarget(url);
      return this.request(checkPath(path), query);
    }, opts.requestsKept);
  }

  /**
   * A user's own request (isPrivateTmdbUrl), fetched as it came — the session forwarded, a
   * client-sent API key replaced by ours — and kept nowhere.
   */
  passThrough(url: string): Promise<UpstreamResponse> {
    const [raw, rawQuery] = splitTarget(url);
    const path = checkPath(raw);
    const query = rawQuery ? canonicalQuery(new URLSearchParams(rawQuery)) : undefined;
    return this.#fetch(classifyTmdb(path), path, query);
  }

  /** Builds the cacheable request for a client path (already checked) and raw query string. */
  request(path: string, rawQuery = ''): UpstreamRequest {
    const cls = classifyTmdb(path);
    // Most requests carry no query: no URLSearchParams is built for them.
    const clean = rawQuery ? canonicalQuery(new URLSearchParams(rawQuery)) : undefined;
    return {
      key: cacheKey('tmdb', path, clean),
      cls,
      ttl: this.#opts.ttl[cls]!,
      fetch: () => this.#shielded(cls, path, clean),
    };
  }

  /** The shield's answer when there is a shield and it could answer, else the origin's. */
  async #shielded(cls: TmdbClass, path: string, query: URLSearchParams | undefined) {
    // The proxy's own routes are TMDB's paths: the shield is asked the same path and query.
    const fromShield = await this.#opts.shield?.ask(path, query);
    return fromShield ?? this.#fetch(cls, path, query);
  }

  #fetch(cls: TmdbClass, path: string, query: URLSearchParams | undefined) {
    const { apiKey, apiUrl, imageUrl, http } = this.#opts;
    const url = new URL((cls === 'image' ? imageUrl : apiUrl) + path);
    const headers: Record<string, string> = {};
    const params = new URLSearchParams(query);
    if (apiKey && cls !== 'image') {
      if (isV4Token(apiKey)) headers.authorization = `Bearer ${apiKey}`;
      else params.set('api_key', apiKey);
    }
    url.search = params.toString();
    return http.get(url, headers);
  }
}
