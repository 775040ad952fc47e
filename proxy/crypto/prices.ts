/**
 * Latest prices of many coins at once (seed 002's get_latest_prices): each coin's quote cached
 * on its own under its id, the missing ones fetched in one batched upstream call. A coin the
 * upstream has no price for, or cannot be named, fails alone: the answer lists it under
 * `errors` and carries the rest.
 */
import { TiercacheError } from '../../lib/errors.ts';
import { BatchCoalescer } from '../cache/batch.ts';
import type { Served, Source, TieredCache } from '../cache/tiered.ts';
import { type CryptoUpstream, cryptoKey } from '../upstreams/crypto.ts';
import type { CacheSlot, UpstreamResponse } from '../upstreams/types.ts';
import { asTiercacheError, type SymbolResolver } from './resolver.ts';
import { overallSource } from './source.ts';

export interface Quote {
  price: number | undefined;
  change_24h: number | undefined;
  volume_24h: number | undefined;
  market_cap: number | undefined;
  updated_at: string;
  source: string;
  id: string;
}

export interface PricesAnswer {
  vs_currency: string;
  prices: Record<string, Quote>;
  /** Coins asked for that have no quote, and why; absent when every one answered. */
  errors?: Record<string, { error: string; message: string }>;
}

/** What the client named the coins by: ticker symbols, or CoinGecko ids as they are. */
export type CoinNames = { by: 'symbol'; names: string[] } | { by: 'id'; names: string[] };

export interface PricesOptions {
  cache: TieredCache;
  crypto: CryptoUpstream;
  resolver: SymbolResolver;
  onCoalesced: () => void;
}

export class LatestPrices {
  readonly #opts: PricesOptions;
  readonly #batches: BatchCoalescer;

  constructor(opts: PricesOptions) {
    this.#opts = opts;
    this.#batches = new BatchCoalescer(opts.cache, opts.onCoalesced);
  }

  /**
   * Quotes for the coins named, keyed as named; throws only when none of them has one (a 404
   * when none exists, else the upstream's failure).
   */
  async get(coins: CoinNames, vs: string): Promise<{ body: PricesAnswer; source: Source }> {
    const failed = new Map<string, TiercacheError>();
    let ids: Map<string, string>;
    if (coins.by === 'id') ids = new Map(coins.names.map((id) => [id, id]));
    else {
      const resolved = await this.#opts.resolver.resolve(coins.names);
      ids = resolved.ids;
      for (const [name, err] of resolved.failed) failed.set(name, err);
    }
    const names = coins.names.filter((name) => ids.has(name));
    const served = await this.#quotes([...new Set(names.map((n) => ids.get(n)!))], vs);

    const body: PricesAnswer = { vs_currency: vs, prices: {} };
    const sources: string[] = [];
    for (const name of coins.names) {
      const id = ids.get(name);
      const got = id === undefined ? undefined : served.get(id);
      if (got instanceof TiercacheError) failed.set(name, got);
      else if (got) {
        body.prices[name] = quote(got, id!, vs);
        sources.push(got.source);
      }
    }
    if (failed.size > 0) {
      body.errors = Object.fromEntries(
        [...failed].map(([name, err]) => [name, { error: err.code, message: err.message }]),
      );
      if (sources.length === 0) throw noneAnswered(failed);
    }
    return { body, source: overallSource(sources) };
  }

  /** Each id's quote: from the tiers, else one upstream call for all missing, else stale, else its error. */
  async #quotes(ids: string[], vs: string): Promise<Map<string, Served | TiercacheError>> {
    const { cache, crypto } = this.#opts;
    const slots: CacheSlot[] = ids.map((id) => ({
      key: cryptoKey('prices', `${id}:${vs}`),
      cls: 'prices',
      ttl: crypto.ttl('prices'),
    }));
    const found = await Promise.all(slots.map((slot) => cache.lookup(slot)));
    const out = new Map<string, Served | TiercacheError>();
    const missing: number[] = [];
    for (const [i, f] of found.entries()) {
      if (f.hit) out.set(ids[i]!, f.hit);
      else missing.push(i);
    }
    if (missing.length === 0) return out;
    const idOf = new Map(missing.map((i) => [slots[i]!.key, ids[i]!]));
    try {
      // One upstream call for every missing coin, never one per coin; a coin another request
      // or replica is already fetching is waited for, not asked again.
      const fetched = await this.#batches.fetch(
        missing.map((i) => slots[i]!),
        (batch) =>
          this.#priceBatch(
            batch.map((slot) => idOf.get(slot.key)!),
            batch,
            vs,
          ),
      );
      for (const i of missing)
        out.set(
          ids[i]!,
          fetched.get(slots[i]!.key) ??
            new TiercacheError('NOT_FOUND', `the upstream has no ${vs} price for ${ids[i]}`),
        );
    } catch (err) {
      for (const i of missing)
        out.set(ids[i]!, cache.staleIfError(found[i]!, err) ?? asTiercacheError(err));
    }
    return out;
  }

  async #priceBatch(
    ids: string[],
    batch: CacheSlot[],
    vs: string,
  ): Promise<Map<string, UpstreamResponse>> {
    const res = await this.#opts.crypto.simplePrice(ids, vs);
    if (res.status !== 200)
      throw new TiercacheError('UPSTREAM_FAILED', `upstream answered ${res.status}`);
    const prices = JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
    const answers = new Map<string, UpstreamResponse>();
    for (const [i, slot] of batch.entries()) {
      const q = prices[ids[i]!];
      // CoinGecko leaves out ids it does not know: those fail alone, nothing is stored.
      if (q && typeof q === 'object')
        answers.set(slot.key, {
          status: 200,
          contentType: 'application/json',
          body: Buffer.from(JSON.stringify(q)),
        });
    }
    return answers;
  }
}

function quote(served: Served, id: string, vs: string): Quote {
  const q = JSON.parse(served.entry.body.toString('utf8')) as Record<string, number>;
  return {
    price: q[vs],
    change_24h: q[`${vs}_24h_change`],
    volume_24h: q[`${vs}_24h_vol`],
    market_cap: q[`${vs}_market_cap`],
    updated_at: new Date(served.entry.storedAt).toISOString(),
    source: served.source,
    id,
  };
}

/** The error of an answer with no quote at all: 404 when no coin exists, else the first real failure. */
function noneAnswered(failed: Map<string, TiercacheError>): TiercacheError {
  const errors = [...failed.values()];
  const real = errors.find((e) => e.code !== 'NOT_FOUND');
  if (real) return real;
  const unknown = [...failed.keys()];
  return new TiercacheError('NOT_FOUND', `no price for ${unknown.join(', ')}`, {
    unknown,
    errors: Object.fromEntries(
      [...failed].map(([name, err]) => [name, { error: err.code, message: err.message }]),
    ),
  });
}
