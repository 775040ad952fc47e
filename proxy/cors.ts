/**
 * CORS for the data routes only: a browser app may read movie, image and price answers from
 * the origins CORS_ORIGINS allows (any, by default, as they are public data), while the admin
 * and system routes never answer cross-origin, so a page elsewhere cannot read them even with
 * a token a user pasted. Headers are set in @fastify/cors's onRequest hook; the routes that
 * write to the socket directly take them over (send.ts writeRaw).
 */
import cors, { type FastifyCorsOptions } from '@fastify/cors';
import type { FastifyInstance } from 'fastify';
import { routeClassOf } from './route-class.ts';

/** Headers a browser script may read besides the CORS-safelisted ones. */
const EXPOSED = ['x-cache', 'cache-status', 'age', 'etag', 'retry-after', 'x-demo-data'];

export async function registerCors(
  app: FastifyInstance,
  origins: '*' | 'none' | string[],
): Promise<void> {
  if (origins === 'none') return;
  const data: FastifyCorsOptions = {
    origin: origins,
    methods: ['GET', 'HEAD'],
    exposedHeaders: EXPOSED,
    maxAge: 600,
  };
  const closed: FastifyCorsOptions = { origin: false };
  await app.register(cors, {
    delegator: (req, callback) => callback(null, routeClassOf(req.url ?? '') ? data : closed),
  });
}
