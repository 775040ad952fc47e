/**
 * Per-client request limits on the data routes (RATE_LIMIT_TMDB, _IMAGES, _CRYPTO), through
 * @fastify/rate-limit. One client is one address (X-Forwarded-For believed for TRUST_PROXY
 * hops), counted per route class. With L2 the counters live in Redis, so a client spread over
 * replicas by the Service gets one limit, not one per replica; while Redis cannot answer each
 * replica counts on its own (a limit then lets up to replicas × max through) rather than
 * failing requests. Over the limit: 429 with Retry-After.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { LRUCache } from 'lru-cache';
import type { RatePerWindow } from '../lib/env.ts';
import { TiercacheError } from '../lib/errors.ts';
import type { RedisTier } from './cache/l2.ts';
import { type RouteClass, routeClassOf } from './route-class.ts';

type Limits = Record<RouteClass, RatePerWindow | 'off'>;

interface Count {
  current: number;
  ttl: number;
}

/** Fixed-window counts in this process, for when there is no Redis or it cannot answer. */
class LocalCounts {
  readonly #windows = new LRUCache<string, { current: number; resetAt: number }>({ max: 50_000 });

  count(client: string, windowMs: number, now = Date.now()): Count {
    let w = this.#windows.get(client);
    if (!w || w.resetAt <= now) {
      w = { current: 0, resetAt: now + windowMs };
      this.#windows.set(client, w);
    }
    w.current += 1;
    return { current: w.current, ttl: w.resetAt - now };
  }
}

type Done = (err: Error | null, count: Count) => void;

/** The store contract @fastify/rate-limit calls: `incr` per request, `child` per route. */
function clientCounters(l2: RedisTier | undefined) {
  const local = new LocalCounts();
  return class ClientCounters {
    incr(client: string, done: Done, windowMs: number): void {
      if (!l2?.active()) {
        done(null, local.count(client, windowMs));
        return;
      }
      l2.countRequest(client, windowMs).then(
        (count) => done(null, count),
        () => done(null, local.count(client, windowMs)),
      );
    }

    child(): ClientCounters {
      return this;
    }
  };
}

export async function registerRateLimits(
  app: FastifyInstance,
  limits: Limits,
  l2: RedisTier | undefined,
): Promise<void> {
  if (Object.values(limits).every((l) => l === 'off')) return; // nothing counted, nothing paid
  const limitOf = (req: FastifyRequest) => {
    const cls = routeClassOf(req.url);
    const limit = cls ? limits[cls] : 'off';
    return limit === 'off' ? undefined : limit;
  };
  await app.register(rateLimit, {
    global: true,
    store: clientCounters(l2),
    keyGenerator: (req) => `${routeClassOf(req.url) ?? '-'}:${req.ip}`,
    allowList: (req) => limitOf(req) === undefined,
    max: (req) => limitOf(req)?.max ?? Number.MAX_SAFE_INTEGER,
    timeWindow: (req) => limitOf(req)?.windowMs ?? 60_000,
    errorResponseBuilder: (req, ctx) => {
      const retryAfterSeconds = Math.max(1, Math.ceil(ctx.ttl / 1000));
      return new TiercacheError(
        'RATE_LIMITED',
        `more than ${ctx.max} ${routeClassOf(req.url)} requests from this client; retry in ${retryAfterSeconds} s`,
        { retryAfterSeconds },
      );
    },
  });
}
