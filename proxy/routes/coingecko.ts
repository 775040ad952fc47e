/**
 * The CoinGecko-compatible pass-through: `GET /api/v3/*` answers as CoinGecko's API does,
 * through the tiers, with the proxy's key injected, so an official client whose base URL is
 * `<proxy>/api/v3` works unchanged (whatever key it sends stays here).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TieredCache } from '../cache/tiered.ts';
import { API_PREFIX, type CryptoUpstream } from '../upstreams/crypto.ts';
import { type RouteAnswers, sendL1, sendWhenServed } from './send.ts';

export interface CoingeckoApiRouteOptions {
  cache: TieredCache;
  crypto: CryptoUpstream;
  answers: RouteAnswers;
}

export async function coingeckoApiRoutes(
  app: FastifyInstance,
  opts: CoingeckoApiRouteOptions,
): Promise<void> {
  const { cache, crypto, answers } = opts;

  // As the TMDB handler: an L1 hit is written before the handler returns.
  const handler = (req: FastifyRequest, reply: FastifyReply): void => {
    const startedAt = performance.now();
    const request = crypto.apiRequest(req.raw.url ?? API_PREFIX);
    const hit = cache.peek(request);
    if (hit) sendL1(reply, hit, answers, startedAt);
    else sendWhenServed(reply, cache.serve(request), answers, startedAt);
  };

  app.get(`${API_PREFIX}/*`, handler);
}
