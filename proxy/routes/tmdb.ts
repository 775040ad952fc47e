/**
 * TMDB routes: `GET /3/*` (v3 JSON) and `GET /t/p/<size>/<file>` (images), through the tiers.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TieredCache } from '../cache/tiered.ts';
import type { TmdbUpstream } from '../upstreams/tmdb.ts';
import { sendL1, sendWhenServed } from './send.ts';

export interface TmdbRouteOptions {
  cache: TieredCache;
  tmdb: TmdbUpstream;
  /** Headers added to every answer (e.g. the demo-data label). */
  headers: Record<string, string>;
}

export async function tmdbRoutes(app: FastifyInstance, opts: TmdbRouteOptions): Promise<void> {
  const { cache, tmdb, headers } = opts;

  // Not async, and never returning a promise: an L1 hit is written before the handler
  // returns, anything else once the tiers answer.
  const handler = (req: FastifyRequest, reply: FastifyReply): void => {
    const request = tmdb.requestForUrl(req.raw.url ?? '/');
    const hit = cache.peek(request);
    if (hit) sendL1(reply, hit, headers);
    else sendWhenServed(reply, cache.serve(request), headers);
  };

  app.get('/3/*', handler);
  app.get('/t/p/:size/*', handler);
}
