/**
 * `GET /api/chart_data` (seed 002's get_chart_data) and `GET /api/analysis`: parse, call,
 * send. Series come from proxy/crypto/charts.ts; analysis is computed from the cached series
 * and cached itself with the open candle's freshness.
 */
import type { FastifyInstance } from 'fastify';
import { TiercacheError } from '../../lib/errors.ts';
import type { TieredCache } from '../cache/tiered.ts';
import { DEFAULT_INDICATORS, indicators } from '../crypto/analysis.ts';
import { INTERVALS, type Interval, MAX_DAYS } from '../crypto/candles.ts';
import type { ChartRequest, ChartSeries } from '../crypto/charts.ts';
import { type CryptoUpstream, cryptoKey } from '../upstreams/crypto.ts';
import type { UpstreamRequest } from '../upstreams/types.ts';
import { parseSymbols, parseVs } from './crypto-params.ts';
import { type RouteAnswers, sendJson, sendServed, withinRequestTimeout } from './send.ts';

export interface ChartRouteOptions {
  cache: TieredCache;
  crypto: CryptoUpstream;
  charts: ChartSeries;
  answers: RouteAnswers;
}

interface ChartQuery {
  symbol?: string;
  interval?: string;
  range?: string;
  vs_currency?: string;
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

export async function cryptoChartRoutes(
  app: FastifyInstance,
  opts: ChartRouteOptions,
): Promise<void> {
  const { cache, crypto, charts, answers } = opts;

  app.get<{ Querystring: ChartQuery }>('/api/chart_data', async (req, reply) => {
    const startedAt = performance.now();
    const r = parseChart(req.query);
    const { series, source } = await withinRequestTimeout(charts.get(r), answers.deadlineMs);
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
      answers,
      startedAt,
    );
  });

  app.get<{ Querystring: ChartQuery & { indicators?: string } }>(
    '/api/analysis',
    async (req, reply) => {
      const startedAt = performance.now();
      const r = parseChart(req.query);
      const spec = (req.query.indicators ?? DEFAULT_INDICATORS).toLowerCase().replace(/\s+/g, '');
      indicators([], spec); // validate before anything is fetched
      const request: UpstreamRequest = {
        key: cryptoKey('analysis', `${r.symbol}:${r.vs}:${r.interval}:${r.days}d:${spec}`),
        cls: 'analysis',
        ttl: crypto.ttl('analysis'),
        fetch: async () => {
          const { series } = await charts.get(r);
          const body = {
            symbol: r.symbol,
            vs_currency: r.vs,
            interval: r.interval,
            range: `${r.days}d`,
            timestamps: series.map(([t]) => t),
            indicators: indicators(
              series.map(([, p]) => p),
              spec,
            ),
          };
          return {
            status: 200,
            contentType: 'application/json',
            body: Buffer.from(JSON.stringify(body)),
          };
        },
      };
      const served = await withinRequestTimeout(cache.serve(request), answers.deadlineMs);
      return sendServed(reply, served, answers, startedAt);
    },
  );
}
