/**
 * `GET /api/chart_data` (seed 002's get_chart_data) and `GET /api/analysis`. Series are cached
 * in chunks (days; hours for 5-minute points): past ones for long (closed candles), the current
 * one briefly (the open candle); a range
 * reuses every chunk it has and fetches what is missing in one upstream call. Analysis is
 * computed from the cached series and cached itself with the open candle's freshness.
 */
import type { FastifyInstance } from 'fastify';
import { TiercacheError } from '../../lib/errors.ts';
import type { CacheEntry } from '../cache/entry.ts';
import type { Served, TieredCache } from '../cache/tiered.ts';
import { bollinger, ema, macd, rsi, sma } from '../crypto/analysis.ts';
import {
  CHUNK_MS,
  chunkLabel,
  chunkStart,
  chunksFor,
  INTERVALS,
  type Interval,
  MAX_DAYS,
  type Point,
  resample,
  splitByChunk,
  UPSTREAM_WINDOW_MS,
} from '../crypto/candles.ts';
import { type CryptoUpstream, cryptoKey } from '../upstreams/crypto.ts';
import type { CacheSlot } from '../upstreams/types.ts';
import { overallSource, parseSymbols, parseVs, resolveIds, sendJson } from './crypto.ts';

export interface ChartRouteOptions {
  cache: TieredCache;
  crypto: CryptoUpstream;
  headers: Record<string, string>;
}

interface ChartQuery {
  symbol?: string;
  interval?: string;
  range?: string;
  vs_currency?: string;
}

interface ChartRequest {
  symbol: string;
  vs: string;
  interval: Interval;
  days: number;
}

function parseChart(q: ChartQuery): ChartRequest {
  const [symbol, ...more] = parseSymbols(q.symbol);
  if (more.length > 0) throw new TiercacheError('BAD_REQUEST', 'chart_data takes one symbol');
  const interval = (q.interval ?? 'hourly') as Interval;
  if (!(interval in INTERVALS))
    throw new TiercacheError(
      'BAD_REQUEST',
      `interval must be one of ${Object.keys(INTERVALS).join(', ')}`,
    );
  const days = Number(/^(\d{1,3})d$/.exec(q.range ?? '1d')?.[1]);
  if (!(days >= 1 && days <= MAX_DAYS[interval])) {
    throw new TiercacheError(
      'BAD_REQUEST',
      MAX_DAYS[interval] === 1
        ? `range must be 1d for interval ${interval} (the upstream keeps that granularity for the last 24 hours only)`
        : `range must be 1d to ${MAX_DAYS[interval]}d for interval ${interval}`,
    );
  }
  return { symbol: symbol!, vs: parseVs(q.vs_currency), interval, days };
}

const points = (e: CacheEntry): Point[] => JSON.parse(e.body.toString('utf8'));

/** The series of a chart request, chunk by chunk from the cache, the missing chunks in one upstream call. */
async function chartSeries(
  cache: TieredCache,
  crypto: CryptoUpstream,
  r: ChartRequest,
): Promise<{ series: Point[]; source: string }> {
  const ids = await resolveIds(cache, crypto, [r.symbol]);
  const now = Date.now();
  const open = chunkStart(now, r.interval);
  const chunks = chunksFor(r.interval, r.days, now);
  const slots: CacheSlot[] = chunks.map((start) => {
    const cls = start === open ? 'charts-open' : 'charts-closed';
    return {
      key: cryptoKey(
        'charts',
        `${r.symbol}:${r.vs}:${r.interval}:${chunkLabel(start, r.interval)}`,
      ),
      cls,
      ttl: crypto.ttl(cls),
    };
  });
  const found = await Promise.all(slots.map((s) => cache.lookup(s)));
  const served: (Served | undefined)[] = found.map((f) => f.hit);
  const missing = chunks.filter((_, i) => !served[i]);
  if (missing.length > 0) {
    try {
      // Only the missing span: from the oldest missing chunk (or as far back as the upstream
      // answers at this granularity) to the end of the newest (or now).
      const from = Math.max(Math.min(...missing), now - UPSTREAM_WINDOW_MS[r.interval]);
      const to = Math.min(Math.max(...missing) + CHUNK_MS[r.interval], now);
      const res = await crypto.marketChartRange(ids.get(r.symbol)!, r.vs, from, to);
      if (res.status !== 200)
        throw new TiercacheError('UPSTREAM_FAILED', `upstream answered ${res.status}`);
      const byChunk = splitByChunk(
        resample(JSON.parse(res.body.toString('utf8')).prices as Point[], r.interval),
        r.interval,
      );
      for (const [i, start] of chunks.entries()) {
        if (served[i]) continue;
        const body = Buffer.from(JSON.stringify(byChunk.get(start) ?? []));
        served[i] = await cache.keep(slots[i]!, {
          status: 200,
          contentType: 'application/json',
          body,
        });
      }
    } catch (err) {
      if (chunks.some((_, i) => !served[i] && !found[i]!.stale)) throw err;
      for (const [i] of chunks.entries())
        served[i] ??= {
          entry: found[i]!.stale!,
          source: 'STALE',
          detail: 'stale-if-error',
          stored: true,
        };
    }
  }
  const from = now - r.days * 86_400_000;
  const series = served.flatMap((s) => points(s!.entry)).filter(([t]) => t >= from);
  return { series, source: overallSource(served.map((s) => s!.source)) };
}

const DEFAULT_INDICATORS = 'sma:20,ema:12,rsi:14,macd,bollinger:20';

function analyse(series: Point[], spec: string) {
  const values = series.map(([, p]) => p);
  const out: Record<string, unknown> = {};
  for (const item of spec.split(',')) {
    const [name, arg] = item.split(':');
    const period = arg === undefined ? undefined : Number(arg);
    if (period !== undefined && !(Number.isInteger(period) && period >= 1 && period <= 500)) {
      throw new TiercacheError(
        'BAD_REQUEST',
        `indicator ${item}: the period must be a whole number from 1 to 500`,
      );
    }
    switch (name) {
      case 'sma':
        out[item] = sma(values, period ?? 20);
        break;
      case 'ema':
        out[item] = ema(values, period ?? 12);
        break;
      case 'rsi':
        out[item] = rsi(values, period ?? 14);
        break;
      case 'macd':
        out[item] = macd(values);
        break;
      case 'bollinger':
        out[item] = bollinger(values, period ?? 20);
        break;
      default:
        throw new TiercacheError(
          'BAD_REQUEST',
          `unknown indicator ${name}; known: sma, ema, rsi, macd, bollinger`,
        );
    }
  }
  return out;
}

export async function cryptoChartRoutes(
  app: FastifyInstance,
  opts: ChartRouteOptions,
): Promise<void> {
  const { cache, crypto, headers } = opts;

  app.get<{ Querystring: ChartQuery }>('/api/chart_data', async (req, reply) => {
    const r = parseChart(req.query);
    const { series, source } = await chartSeries(cache, crypto, r);
    return sendJson(
      reply,
      {
        symbol: r.symbol,
        vs_currency: r.vs,
        interval: r.interval,
        range: `${r.days}d`,
        points: series,
      },
      source,
      headers,
    );
  });

  app.get<{ Querystring: ChartQuery & { indicators?: string } }>(
    '/api/analysis',
    async (req, reply) => {
      const r = parseChart(req.query);
      const spec = (req.query.indicators ?? DEFAULT_INDICATORS).toLowerCase().replace(/\s+/g, '');
      analyse([], spec); // validate before anything is fetched
      const served = await cache.serve({
        key: cryptoKey('analysis', `${r.symbol}:${r.vs}:${r.interval}:${r.days}d:${spec}`),
        cls: 'analysis',
        ttl: crypto.ttl('analysis'),
        fetch: async () => {
          const { series } = await chartSeries(cache, crypto, r);
          const body = {
            symbol: r.symbol,
            vs_currency: r.vs,
            interval: r.interval,
            range: `${r.days}d`,
            timestamps: series.map(([t]) => t),
            indicators: analyse(series, spec),
          };
          return {
            status: 200,
            contentType: 'application/json',
            body: Buffer.from(JSON.stringify(body)),
          };
        },
      });
      return reply
        .headers(headers)
        .header('x-cache', served.source)
        .type(served.entry.contentType)
        .send(served.entry.body);
    },
  );
}
