/**
 * TMDB routes: `GET /3/*` (v3 JSON) and `GET /t/p/<size>/<file>` (images), through the tiers.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { checkPath } from '../cache/keys.ts';
import type { TieredCache } from '../cache/tiered.ts';
import type { TmdbUpstream } from '../upstreams/tmdb.ts';
import { sendL1, sendServed } from './send.ts';

export interface TmdbRouteOptions {
  cache: TieredCache;
  tmdb: TmdbUpstream;
  /** Headers added to every answer (e.g. the demo-data label). */
  headers: Record<string, string>;
}

function splitUrl(req: FastifyRequest): { path: string; query: URLSearchParams } {
  const url = req.raw.url ?? '/';
  const q = url.indexOf('?');
  return q < 0
    ? { path: url, query: new URLSearchParams() }
    : { path: url.slice(0, q), query: new URLSearchParams(url.slice(q + 1)) };
}

export async function tmdbRoutes(app: FastifyInstance, opts: TmdbRouteOptions): Promise<void> {
  const { cache, tmdb, headers } = opts;

  const handler = async (req: FastifyRequest, reply: import('fastify').FastifyReply) => {
    const { path, query } = splitUrl(req);
    const request = tmdb.request(checkPath(path), query);
    const hit = cache.peek(request.key, request.cls);
    if (hit) return sendL1(reply, hit, headers);
    return sendServed(reply, await cache.serve(request), headers);
  };

  app.get('/3/*', handler);
  app.get('/t/p/:size/*', handler);
}
