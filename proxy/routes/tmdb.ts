/**
 * TMDB routes: `GET /3/*` (v3 JSON) and `GET /t/p/<size>/<file>` (images), through the tiers.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TieredCache } from '../cache/tiered.ts';
import { streamingTo } from '../upstreams/call-context.ts';
import { isPrivateTmdbUrl, type TmdbUpstream } from '../upstreams/tmdb.ts';
import { sendL1, sendPassedThrough, sendWhenServed } from './send.ts';
import { StreamedMiss } from './streamed-miss.ts';

export interface TmdbRouteOptions {
  cache: TieredCache;
  tmdb: TmdbUpstream;
  /** Headers added to every answer (e.g. the demo-data label). */
  headers: Record<string, string>;
  /** REQUEST_TIMEOUT: the longest a client waits for an answer. */
  deadlineMs: number;
}

export async function tmdbRoutes(app: FastifyInstance, opts: TmdbRouteOptions): Promise<void> {
  const { cache, tmdb, headers, deadlineMs } = opts;

  // Not async, and never returning a promise: an L1 hit is written before the handler
  // returns, anything else once the tiers answer.
  const handler = (req: FastifyRequest, reply: FastifyReply): void => {
    const url = req.raw.url ?? '/';
    // A user's session, account or auth flow: theirs alone, so through, never into the cache.
    if (isPrivateTmdbUrl(url)) {
      sendPassedThrough(reply, tmdb.passThrough(url), headers, deadlineMs);
      return;
    }
    const request = tmdb.requestForUrl(url);
    const hit = cache.peek(request);
    if (hit) sendL1(reply, hit, headers);
    else if (request.cls === 'image') {
      // Should the upstream be asked, the image streams to this client while the cache fills.
      const streamed = new StreamedMiss(reply, request, cache, headers);
      streamingTo(streamed, () =>
        sendWhenServed(reply, cache.serve(request), headers, deadlineMs, streamed),
      );
    } else sendWhenServed(reply, cache.serve(request), headers, deadlineMs);
  };

  app.get('/3/*', handler);
  app.get('/t/p/:size/*', handler);
}
