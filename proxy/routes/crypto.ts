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
import { sendJson, withinRequestTimeout } from './send.ts';

export interface CryptoRouteOptions {
  cache: TieredCache;
  crypto: CryptoUpstream;
  prices: LatestPrices;
  headers: Record<string, string>;
  /** REQUEST_TIMEOUT: the longest a client waits for an answer. */
  deadlineMs: number;
}

export async function cryptoRoutes(app: FastifyInstance, opts: CryptoRouteOptions): Promise<void> {
  const { cache, crypto, prices, headers, deadlineMs } = opts;

  app.get<{ Querystring: { symbols?: string; ids?: string; vs_currency?: string } }>(
    '/api/latest_prices',
    async (req, reply) => {
      const coins = parseCoins(req.query);
      const vs = parseVs(req.query.vs_currency);
      const { body, source } = await withinRequestTimeout(prices.get(coins, vs), deadlineMs);
      return sendJson(reply, body, source, headers);
    },
  );

  app.get('/api/market_indicators', async (_req, reply) => {
    const { body, source } = await withinRequestTimeout(
      marketIndicators(cache, crypto),
      deadlineMs,
    );
    return sendJson(reply, body, source, headers);
  });
}
