/**
 * CORS for the data routes only: a browser app may read movie, image and price answers from
 * the origins CORS_ORIGINS allows (any, by default, as they are public data), while the admin
 * and system routes never answer cross-origin, so a page elsewhere cannot read them even with
 * a token a user pasted.
 *
 * With any origin allowed (`*`) a data answer's CORS headers do not depend on the request, so
 * they are fixed headers the routes write with every answer (`dataCorsHeaders`), and only
 * preflights go through @fastify/cors: its per-request hook cost a tenth of an L1 hit. With a
 * list, the answer depends on the request's Origin, and the plugin's hook sets the headers on
 * every request; the routes that write to the socket directly take them over (send.ts writeRaw).
 */
import cors, { type FastifyCorsOptions } from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import { routeClassOf } from './route-class.ts';

export type CorsOrigins = '*' | 'none' | string[];

/** Headers a browser script may read besides the CORS-safelisted ones. */
const EXPOSED = ['x-cache', 'cache-status', 'age', 'etag', 'retry-after', 'x-demo-data'];

/** The CORS headers every data answer carries whatever the request: only with `*`. */
export function dataCorsHeaders(origins: CorsOrigins): Record<string, string> {
  return origins === '*'
    ? {
        'access-control-allow-origin': '*',
        'access-control-expose-headers': EXPOSED.join(', '),
      }
    : {};
}

export async function registerCors(app: FastifyInstance, origins: CorsOrigins): Promise<void> {
  if (origins === 'none') return;
  const data: FastifyCorsOptions = {
    origin: origins,
    methods: ['GET', 'HEAD'],
    exposedHeaders: EXPOSED,
    maxAge: 600,
  };
  const closed: FastifyCorsOptions = { origin: false };
  const plugin = {
    delegator: (req: { url?: string }, callback: (e: null, o: FastifyCorsOptions) => void) =>
      callback(null, routeClassOf(req.url ?? '') ? data : closed),
  };
  if (origins !== '*') {
    await app.register(cors, plugin);
    return;
  }
  // In a context of its own, the plugin's hook runs only for the preflight route it adds
  // there (`OPTIONS *`); every other route is outside it and carries dataCorsHeaders instead.
  await app.register(async (preflight) => {
    await preflight.register(cors, plugin);
  });
}
