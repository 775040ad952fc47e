/**
 * Crypto routes (seed 002): `GET /api/latest_prices?symbols=` (or `ids=`) answers many coins
 * at once, `GET /api/market_indicators` the global market figures. Parse, call, send: the
 * domain lives in proxy/crypto/.
 */
import type { FastifyInstance } from 'fastify';
import type { TieredCache } from '../cache/tiered.ts';
import { marketIndicators } from '../crypto/market.ts';
import type { LatestPrices } from '../crypto/prices.ts';
import type { CryptoUpstream } from '../upstreams/crypto.ts';
import { parseCoins, parseVs } from './crypto-params.ts';
import { type RouteAnswers, sendJson, withinRequestTimeout } from './send.ts';

export interface CryptoRouteOptions {
  cache: TieredCache;
  crypto: CryptoUpstream;
  prices: LatestPrices;
  answers: RouteAnswers;
}

export async function cryptoRoutes(app: FastifyInstance, opts: CryptoRouteOptions): Promise<void> {
  const { cache, crypto, prices, answers } = opts;

  app.get<{ Querystring: { symbols?: string; ids?: string; vs_currency?: string } }>(
    '/api/latest_prices',
    async (req, reply) => {
      const startedAt = performance.now();
      const coins = parseCoins(req.query);
      const vs = parseVs(req.query.vs_currency);
      const { body, source } = await withinRequestTimeout(
        prices.get(coins, vs),
        answers.deadlineMs,
      );
      return sendJson(reply, body, source, answers, startedAt);
    },
  );

  app.get('/api/market_indicators', async (_req, reply) => {
    const startedAt = performance.now();
    const { body, source } = await withinRequestTimeout(
      marketIndicators(cache, crypto),
      answers.deadlineMs,
    );
    return sendJson(reply, body, source, answers, startedAt);
  });
}
