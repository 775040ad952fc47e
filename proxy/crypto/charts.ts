/**
 * Chart series (seed 002's get_chart_data), assembled from cached chunks: past chunks kept for
 * long (closed candles), the open one — and one that closed a moment ago — briefly; whatever
 * chunks are missing come from one upstream call for their span, split again and cached.
 */
import { TiercacheError } from '../../lib/errors.ts';
import type { CacheEntry } from '../cache/entry.ts';
import type { Served, Source, TieredCache } from '../cache/tiered.ts';
import { type CryptoUpstream, cryptoKey } from '../upstreams/crypto.ts';
import type { CacheSlot } from '../upstreams/types.ts';
import {
  chunkLabel,
  chunksFor,
  fetchSpan,
  type Interval,
  isUnsettled,
  type Point,
  resample,
  splitByChunk,
} from './candles.ts';
import type { SymbolResolver } from './resolver.ts';
import { overallSource } from './source.ts';

export interface ChartRequest {
  symbol: string;
  vs: string;
  interval: Interval;
  days: number;
}

const points = (e: CacheEntry): Point[] => JSON.parse(e.body.toString('utf8'));

export class ChartSeries {
  readonly #cache: TieredCache;
  readonly #crypto: CryptoUpstream;
  readonly #resolver: SymbolResolver;

  constructor(opts: { cache: TieredCache; crypto: CryptoUpstream; resolver: SymbolResolver }) {
    this.#cache = opts.cache;
    this.#crypto = opts.crypto;
    this.#resolver = opts.resolver;
  }

  /** The series of a chart request, chunk by chunk from the cache, the missing chunks in one upstream call. */
  async get(r: ChartRequest): Promise<{ series: Point[]; source: Source }> {
    const cache = this.#cache;
    const resolved = await this.#resolver.resolve([r.symbol]);
    const id = resolved.ids.get(r.symbol);
    if (!id) throw resolved.failed.get(r.symbol)!;
    const now = Date.now();
    const chunks = chunksFor(r.interval, r.days, now);
    const slots: CacheSlot[] = chunks.map((start) => {
      const cls = isUnsettled(start, r.interval, now) ? 'charts-open' : 'charts-closed';
      return {
        key: cryptoKey(
          'charts',
          `${r.symbol}:${r.vs}:${r.interval}:${chunkLabel(start, r.interval)}`,
        ),
        cls,
        ttl: this.#crypto.ttl(cls),
      };
    });
    const found = await Promise.all(slots.map((s) => cache.lookup(s)));
    const served: (Served | undefined)[] = found.map((f) => f.hit);
    const missing = chunks.filter((_, i) => !served[i]);
    if (missing.length > 0) {
      try {
        const { from, to } = fetchSpan(missing, r.interval, now);
        const res = await this.#crypto.marketChartRange(id, r.vs, from, to);
        if (res.status !== 200)
          throw new TiercacheError('UPSTREAM_FAILED', `upstream answered ${res.status}`);
        const byChunk = splitByChunk(
          resample(JSON.parse(res.body.toString('utf8')).prices as Point[], r.interval),
          r.interval,
        );
        for (const [i, start] of chunks.entries()) {
          if (served[i]) continue;
          const body = Buffer.from(JSON.stringify(byChunk.get(start) ?? []));
          // Written to L2 behind the answer, every chunk at once.
          served[i] = cache.keep(slots[i]!, {
            status: 200,
            contentType: 'application/json',
            body,
          }).served;
        }
      } catch (err) {
        // One series: stale chunks stand in only when every missing chunk has one.
        const stale = chunks.map((_, i) => served[i] ?? cache.staleIfError(found[i]!, err));
        if (stale.some((s) => !s)) throw err;
        served.splice(0, served.length, ...stale);
      }
    }
    const from = now - r.days * 86_400_000;
    const series = served.flatMap((s) => points(s!.entry)).filter(([t]) => t >= from);
    return { series, source: overallSource(served.map((s) => s!.source)) };
  }
}
