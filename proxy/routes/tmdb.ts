/**
 * TMDB routes: `GET /3/*` (v3 JSON) and `GET /t/p/<size>/<file>` (images), through the tiers.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TieredCache } from '../cache/tiered.ts';
import { streamingTo } from '../upstreams/call-context.ts';
import { isPrivateTmdbUrl, type TmdbUpstream } from '../upstreams/tmdb.ts';
import { type RouteAnswers, sendL1, sendPassedThrough, sendWhenServed } from './send.ts';
import { StreamedMiss } from './streamed-miss.ts';

export interface TmdbRouteOptions {
  cache: TieredCache;
  tmdb: TmdbUpstream;
  /** What the answers of `/3/*` and of `/t/p/*` carry. */
  answers: { tmdb: RouteAnswers; images: RouteAnswers };
}

export async function tmdbRoutes(app: FastifyInstance, opts: TmdbRouteOptions): Promise<void> {
  const { cache, tmdb, answers } = opts;

  // Not async, and never returning a promise: an L1 hit is written before the handler
  // returns, anything else once the tiers answer.
  const handler = (req: FastifyRequest, reply: FastifyReply): void => {
    const startedAt = performance.now();
    const url = req.raw.url ?? '/';
    // A user's session, account or auth flow: theirs alone, so through, never into the cache.
    if (isPrivateTmdbUrl(url)) {
      sendPassedThrough(reply, tmdb.passThrough(url), answers.tmdb, startedAt);
      return;
    }
    const request = tmdb.requestForUrl(url);
    const image = request.cls === 'image';
    const routeAnswers = image ? answers.images : answers.tmdb;
    const hit = cache.peek(request);
    if (hit) sendL1(reply, hit, routeAnswers, startedAt);
    else if (image) {
      // Should the upstream be asked, the image streams to this client while the cache fills.
      const streamed = new StreamedMiss(reply, request, cache, routeAnswers, startedAt);
      streamingTo(streamed, () =>
        sendWhenServed(reply, cache.serve(request), routeAnswers, startedAt, streamed),
      );
    } else sendWhenServed(reply, cache.serve(request), routeAnswers, startedAt);
  };

  app.get('/3/*', handler);
  app.get('/t/p/:size/*', handler);
}
