/**
 * Symbols to CoinGecko ids, through the cache: the coin list (cached for a day) names each
 * symbol's candidates; a symbol several coins share is settled by their market-cap ranks, one
 * `/coins/markets` call for every such symbol of a request, and the choice cached per symbol.
 * A symbol that cannot be resolved fails on its own; the rest of the request goes on.
 */
import { TiercacheError } from '../../lib/errors.ts';
import { BatchCoalescer } from '../cache/batch.ts';
import type { CacheEntry } from '../cache/entry.ts';
import type { Served, TieredCache } from '../cache/tiered.ts';
import { type CryptoUpstream, cryptoKey } from '../upstreams/crypto.ts';
import type { CacheSlot, UpstreamResponse } from '../upstreams/types.ts';
import { candidatesFor, idsBySymbol, type ListedCoin, pickByRank } from './symbols.ts';

/** What resolving gave, per symbol asked: its coin id, or why there is none. */
export interface Resolved {
  ids: Map<string, string>;
  failed: Map<string, TiercacheError>;
}

export interface ResolverOptions {
  cache: TieredCache;
  crypto: CryptoUpstream;
  /** Upper-case symbol → coin id, winning over the list (CRYPTO_SYMBOL_IDS). */
  overrides: ReadonlyMap<string, string>;
  onCoalesced: () => void;
}

/** CoinGecko's /coins/markets answers at most this many ids per call. */
const MARKETS_PAGE = 250;

export class SymbolResolver {
  readonly #opts: ResolverOptions;
  readonly #batches: BatchCoalescer;
  readonly #indexes = new WeakMap<CacheEntry, Map<string, string[]>>();

  constructor(opts: ResolverOptions) {
    this.#opts = opts;
    this.#batches = new BatchCoalescer(opts.cache, opts.onCoalesced);
  }

  async resolve(symbols: string[]): Promise<Resolved> {
    const { cache, crypto, overrides } = this.#opts;
    const list = await cache.serve(crypto.coinList());
    if (list.entry.status !== 200)
      throw new TiercacheError(
        'UPSTREAM_FAILED',
        `coin list unavailable (upstream status ${list.entry.status})`,
      );
    const bySymbol = this.#index(list.entry);
    const out: Resolved = { ids: new Map(), failed: new Map() };
    const shared = new Map<string, string[]>();
    for (const symbol of symbols) {
      const found = candidatesFor(symbol, bySymbol, overrides);
      if (found.kind === 'id') out.ids.set(symbol, found.id);
      else if (found.kind === 'shared') shared.set(symbol, found.ids);
      else out.failed.set(symbol, new TiercacheError('NOT_FOUND', `unknown symbol ${symbol}`));
    }
    if (shared.size > 0) await this.#byRank(shared, out);
    return out;
  }

  #index(list: CacheEntry): Map<string, string[]> {
    let index = this.#indexes.get(list);
    if (!index) {
      index = idsBySymbol(JSON.parse(list.body.toString('utf8')) as ListedCoin[]);
      this.#indexes.set(list, index);
    }
    return index;
  }

  /** Settles shared symbols by market-cap rank: cached choices first, one batched call for the rest. */
  async #byRank(shared: Map<string, string[]>, out: Resolved): Promise<void> {
    const { cache, crypto } = this.#opts;
    const symbols = [...shared.keys()];
    const slots: CacheSlot[] = symbols.map((s) => ({
      key: cryptoKey('meta', `symbol:${s}`),
      cls: 'meta',
      ttl: crypto.ttl('meta'),
    }));
    const found = await Promise.all(slots.map((slot) => cache.lookup(slot)));
    const served = new Map<string, Served | undefined>();
    const missing = slots.filter((slot, i) => {
      if (found[i]!.hit) served.set(slot.key, found[i]!.hit);
      return !found[i]!.hit;
    });
    const candidatesOf = new Map(slots.map((slot, i) => [slot.key, shared.get(symbols[i]!)!]));
    let failure: unknown = new TiercacheError('UPSTREAM_FAILED', 'no rank answer');
    if (missing.length > 0) {
      try {
        const fetched = await this.#batches.fetch(missing, (batch) =>
          this.#rankBatch(batch, candidatesOf),
        );
        for (const slot of missing) served.set(slot.key, fetched.get(slot.key));
      } catch (err) {
        failure = err;
        for (const slot of missing)
          served.set(slot.key, cache.staleIfError(found[slots.indexOf(slot)]!, err));
      }
    }
    for (const [i, symbol] of symbols.entries()) {
      const got = served.get(slots[i]!.key);
      const id = got && (JSON.parse(got.entry.body.toString('utf8')) as { id: string | null }).id;
      if (id) out.ids.set(symbol, id);
      else if (!got) out.failed.set(symbol, asTiercacheError(failure));
      else {
        const ids = shared.get(symbol)!;
        out.failed.set(
          symbol,
          new TiercacheError(
            'NOT_FOUND',
            `symbol ${symbol} is shared by ${ids.length} coins and none has a market-cap rank; ask by id (ids=${ids.slice(0, 5).join(',')})`,
          ),
        );
      }
    }
  }

  /**
   * One /coins/markets call per 250 candidates; each symbol's answer is the id it means, or
   * `null` when no candidate has a rank (kept too, so asking again costs no call).
   */
  async #rankBatch(
    batch: CacheSlot[],
    candidatesOf: Map<string, string[]>,
  ): Promise<Map<string, UpstreamResponse>> {
    const all = [...new Set(batch.flatMap((slot) => candidatesOf.get(slot.key)!))];
    const pages = Array.from({ length: Math.ceil(all.length / MARKETS_PAGE) }, (_, i) =>
      all.slice(i * MARKETS_PAGE, (i + 1) * MARKETS_PAGE),
    );
    const rank = new Map<string, number>();
    for (const res of await Promise.all(pages.map((ids) => this.#opts.crypto.markets(ids)))) {
      if (res.status !== 200)
        throw new TiercacheError('UPSTREAM_FAILED', `coins/markets answered ${res.status}`);
      for (const coin of JSON.parse(res.body.toString('utf8')) as {
        id: string;
        market_cap_rank: number | null;
      }[])
        if (typeof coin.market_cap_rank === 'number') rank.set(coin.id, coin.market_cap_rank);
    }
    const answers = new Map<string, UpstreamResponse>();
    for (const slot of batch) {
      const id = pickByRank(candidatesOf.get(slot.key)!, rank) ?? null;
      answers.set(slot.key, {
        status: 200,
        contentType: 'application/json',
        body: Buffer.from(JSON.stringify({ id })),
      });
    }
    return answers;
  }
}

export function asTiercacheError(err: unknown): TiercacheError {
  return err instanceof TiercacheError
    ? err
    : new TiercacheError('UPSTREAM_FAILED', (err as Error).message ?? String(err));
}
