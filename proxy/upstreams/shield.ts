/**
 * The shield tier (SHIELD_URL), as CDNs have it: a proxy in a far region asks an upper-tier
 * proxy — the home region's — before the upstream on a miss, so each key is fetched from
 * TMDB or CoinGecko about once per TTL worldwide, whatever the number of regions. The shield
 * is asked on the proxy's own routes (the same path and query a client would send it), with
 * no credential: it injects its own. When the shield cannot answer (unreachable, too slow, or
 * a 5xx of its own) the origin is asked instead, so a shield outage costs upstream calls, never
 * answers. Its 4xx answers and its 429s are the upstream's, passed on as they are.
 */
import { TiercacheError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/log.ts';
import { isForShieldClient } from './call-context.ts';
import type { HttpUpstream } from './http.ts';
import type { UpstreamResponse } from './types.ts';

/** Sent with every request to a shield: it then asks no shield of its own (call-context.ts). */
export const SHIELD_CLIENT_HEADER = 'x-tiercache-shield-client';

/** How an answer from the shield went, as the metrics count it. */
export type ShieldResult = 'hit' | 'miss' | 'fallback';

export interface ShieldOptions {
  /** The shield proxy's base URL (SHIELD_URL). */
  base: URL;
  /** Its own pool (an HttpUpstream named "shield" that reads the Age header). */
  http: HttpUpstream;
  log: Logger;
  counted: (result: ShieldResult) => void;
}

export class Shield {
  readonly #opts: ShieldOptions;
  readonly #log: Logger;

  constructor(opts: ShieldOptions) {
    this.#opts = opts;
    this.#log = opts.log.child({ component: 'shield', shield: opts.base.origin });
  }

  /**
   * `route` (a path of this proxy's, `query` its query) from the shield, or undefined when the
   * shield could not answer and the origin must be asked.
   */
  async ask(
    route: string,
    query?: URLSearchParams | Iterable<[string, string]>,
  ): Promise<UpstreamResponse | undefined> {
    // Asked as a shield ourselves: the upstream it is (see forShieldClient).
    if (isForShieldClient()) return undefined;
    const url = new URL(route.replace(/^\//, ''), withSlash(this.#opts.base));
    for (const [k, v] of query ?? []) url.searchParams.append(k, v);
    let res: UpstreamResponse;
    try {
      res = await this.#opts.http.get(url, { [SHIELD_CLIENT_HEADER]: '1' });
    } catch (err) {
      // The upstream's back-off, which the shield passed on: the origin would say the same.
      if (err instanceof TiercacheError && err.code === 'UPSTREAM_RATE_LIMITED') throw err;
      return this.#fallback(String((err as Error).message));
    }
    if (res.status >= 500) return this.#fallback(`it answered ${res.status}`);
    this.#opts.counted(res.shieldCache === 'MISS' ? 'miss' : 'hit');
    return { ...res, viaShield: true };
  }

  #fallback(why: string): undefined {
    this.#opts.counted('fallback');
    this.#log.warn({ why }, 'the shield could not answer: asking the origin');
    return undefined;
  }
}

/** A base URL's path ends in "/", so relative routes are resolved under it, not beside it. */
const withSlash = (base: URL): URL =>
  base.pathname.endsWith('/') ? base : new URL(`${base.pathname}/`, base);
