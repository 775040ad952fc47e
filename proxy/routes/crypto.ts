/**
 * Crypto routes (seed 002): `GET /api/latest_prices?symbols=` answers many symbols at once,
 * each cached on its own, the missing ones fetched from the upstream in one batched call;
 * `GET /api/market_indicators` from the upstream's global endpoint.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { TiercacheError } from '../../lib/errors.ts';
import { BatchCoalescer } from '../cache/batch.ts';
import type { CacheEntry } from '../cache/entry.ts';
import type { Served, TieredCache } from '../cache/tiered.ts';
import { type CryptoUpstream, cryptoKey } from '../upstreams/crypto.ts';
import type { CacheSlot, UpstreamResponse } from '../upstreams/types.ts';

const SYMBOL = /^[A-Z0-9]{1,15}$/;
const MAX_SYMBOLS = 250;

export interface CryptoRouteOptions {
  cache: TieredCache;
  crypto: CryptoUpstream;
  headers: Record<string, string>;
  /** Counts a symbol this process was already fetching for another request. */
  onCoalesced: () => void;
}

const symbolMaps = new WeakMap<CacheEntry, Map<string, string>>();

/** SYMBOL → coin id from the (cached) coin list; the first coin with a symbol wins, as CoinGecko lists the major one first. */
function symbolMap(entry: CacheEntry): Map<string, string> {
  let map = symbolMaps.get(entry);
  if (!map) {
    map = new Map();
    for (const c of JSON.parse(entry.body.toString('utf8')) as { id: string; symbol: string }[]) {
      const s = c.symbol.toUpperCase();
      if (!map.has(s)) map.set(s, c.id);
    }
    symbolMaps.set(entry, map);
  }
  return map;
}

/** Coin ids of the symbols, from the cached coin list; unknown symbols are a 404 listing them. */
export async function resolveIds(
  cache: TieredCache,
  crypto: CryptoUpstream,
  symbols: string[],
): Promise<Map<string, string>> {
  const list = await cache.serve(crypto.coinList());
  if (list.entry.status !== 200) {
    throw new TiercacheError(
      'UPSTREAM_FAILED',
      `coin list unavailable (upstream status ${list.entry.status})`,
    );
  }
  const ids = symbolMap(list.entry);
  const unknown = symbols.filter((s) => !ids.has(s));
  if (unknown.length > 0)
    throw new TiercacheError('NOT_FOUND', `unknown symbols: ${unknown.join(', ')}`, { unknown });
  return ids;
}

export function parseVs(raw: string | undefined): string {
  const vs = (raw ?? 'usd').toLowerCase();
  if (!/^[a-z]{3,5}$/.test(vs))
    throw new TiercacheError('BAD_REQUEST', 'vs_currency must be a currency code such as usd');
  return vs;
}

export function parseSymbols(raw: string | undefined): string[] {
  const symbols = [
    ...new Set(
      (raw ?? '')
        .split(',')
        .map((s) => s.trim().toUpperCase())
        .filter(Boolean),
    ),
  ];
  if (symbols.length === 0)
    throw new TiercacheError('BAD_REQUEST', 'symbols is required, e.g. ?symbols=BTC,ETH');
  if (symbols.length > MAX_SYMBOLS)
    throw new TiercacheError('BAD_REQUEST', `at most ${MAX_SYMBOLS} symbols per request`);
  const bad = symbols.filter((s) => !SYMBOL.test(s));
  if (bad.length > 0)
    throw new TiercacheError('BAD_REQUEST', `invalid symbols: ${bad.join(', ')}`, { invalid: bad });
  return symbols;
}

/** X-Cache of an answer assembled from several entries: the weakest source wins. */
export function overallSource(sources: string[]): string {
  if (sources.includes('MISS')) return 'MISS';
  if (sources.includes('STALE')) return 'STALE';
  return sources.every((s) => s === 'L1') ? 'L1' : 'L2';
}

/** An answer assembled from several cached entries: JSON, with where the weakest part came from. */
export function sendJson(
  reply: FastifyReply,
  body: unknown,
  source: string,
  headers: Record<string, string>,
): FastifyReply {
  return reply
    .headers(headers)
    .header('x-cache', source)
    .header(
      'cache-status',
      `tiercache; ${source === 'MISS' ? 'fwd=uri-miss' : 'hit'}; detail=${source.toLowerCase()}`,
    )
    .send(body);
}

export async function cryptoRoutes(app: FastifyInstance, opts: CryptoRouteOptions): Promise<void> {
  const { cache, crypto, headers } = opts;
  const batches = new BatchCoalescer(cache, opts.onCoalesced);

  app.get<{ Querystring: { symbols?: string; vs_currency?: string } }>(
    '/api/latest_prices',
    async (req, reply) => {
      const symbols = parseSymbols(req.query.symbols);
      const vs = parseVs(req.query.vs_currency);

      const ids = await resolveIds(cache, crypto, symbols);

      const slots: CacheSlot[] = symbols.map((s) => ({
        key: cryptoKey('prices', `${s}:${vs}`),
        cls: 'prices',
        ttl: crypto.ttl('prices'),
      }));
      const found = await Promise.all(slots.map((slot) => cache.lookup(slot)));
      const served = new Map<string, Served>();
      const missing: number[] = [];
      for (const [i, f] of found.entries()) {
        if (f.hit) served.set(symbols[i]!, f.hit);
        else missing.push(i);
      }

      if (missing.length > 0) {
        try {
          // One upstream call for every missing symbol, never one per symbol; a symbol that
          // another request or replica is already fetching is waited for, not asked again.
          const symbolOf = new Map(missing.map((i) => [slots[i]!.key, symbols[i]!]));
          const fetched = await batches.fetch(
            missing.map((i) => slots[i]!),
            async (batch) => {
              const wanted = batch.map((slot) => symbolOf.get(slot.key)!);
              const res = await crypto.simplePrice(
                wanted.map((s) => ids.get(s)!),
                vs,
              );
              if (res.status !== 200)
                throw new TiercacheError('UPSTREAM_FAILED', `upstream answered ${res.status}`);
              const prices = JSON.parse(res.body.toString('utf8')) as Record<string, unknown>;
              const answers = new Map<string, UpstreamResponse>();
              for (const [i, slot] of batch.entries()) {
                const quote = prices[ids.get(wanted[i]!)!];
                if (!quote)
                  throw new TiercacheError(
                    'UPSTREAM_FAILED',
                    `upstream has no price for ${wanted[i]}`,
                  );
                const body = Buffer.from(JSON.stringify(quote));
                answers.set(slot.key, { status: 200, contentType: 'application/json', body });
              }
              return answers;
            },
          );
          for (const i of missing) served.set(symbols[i]!, fetched.get(slots[i]!.key)!);
        } catch (err) {
          // Stale-if-error: every missing symbol with a stale copy is served from it.
          const noStale = missing.filter((i) => !found[i]!.stale);
          if (noStale.length > 0) throw err;
          for (const i of missing)
            served.set(symbols[i]!, {
              entry: found[i]!.stale!,
              source: 'STALE',
              detail: 'stale-if-error',
              stored: true,
            });
        }
      }

      const out: Record<string, unknown> = {};
      const sources: string[] = [];
      for (const s of symbols) {
        const { entry, source } = served.get(s)!;
        const q = JSON.parse(entry.body.toString('utf8')) as Record<string, number>;
        out[s] = {
          price: q[vs],
          change_24h: q[`${vs}_24h_change`],
          volume_24h: q[`${vs}_24h_vol`],
          market_cap: q[`${vs}_market_cap`],
          updated_at: new Date(entry.storedAt).toISOString(),
          source,
        };
        sources.push(source);
      }
      return sendJson(reply, { vs_currency: vs, prices: out }, overallSource(sources), headers);
    },
  );

  app.get('/api/market_indicators', async (_req, reply) => {
    const served = await cache.serve(crypto.global());
    if (served.entry.status !== 200)
      throw new TiercacheError('UPSTREAM_FAILED', `upstream answered ${served.entry.status}`);
    const { data } = JSON.parse(served.entry.body.toString('utf8'));
    return sendJson(
      reply,
      {
        total_market_cap_usd: data.total_market_cap?.usd,
        total_volume_24h_usd: data.total_volume?.usd,
        btc_dominance: data.market_cap_percentage?.btc,
        eth_dominance: data.market_cap_percentage?.eth,
        active_cryptocurrencies: data.active_cryptocurrencies,
        updated_at: new Date(served.entry.storedAt).toISOString(),
      },
      served.source,
      headers,
    );
  });
}
