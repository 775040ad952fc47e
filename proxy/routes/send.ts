/**
 * Writing a cached answer: the body as stored (Buffer, binary-safe) plus where it came from —
 * `X-Cache`, an RFC 9211 `Cache-Status`, `Age` and a matching `Cache-Control`.
 */
import type { FastifyReply } from 'fastify';
import type { CacheEntry } from '../cache/entry.ts';
import { ageSeconds, ttlSeconds } from '../cache/policy.ts';
import type { Served } from '../cache/tiered.ts';

export const CACHE_NAME = 'tiercache';

export function cacheStatus(served: Served, now: number): string {
  const ttl = ttlSeconds(served.entry.expiresAt, now);
  switch (served.source) {
    case 'L1':
      return `${CACHE_NAME}; hit; ttl=${ttl}; detail=l1`;
    case 'L2':
      return `${CACHE_NAME}; hit; ttl=${ttl}; detail=l2${served.detail === 'coalesced' ? '; collapsed' : ''}`;
    case 'STALE':
      return served.detail === 'stale-if-error'
        ? `${CACHE_NAME}; fwd=stale; fwd-status=${served.fwdStatus ?? 502}; ttl=${ttl}; detail=stale-if-error`
        : `${CACHE_NAME}; hit; ttl=${ttl}; detail=stale-while-revalidate`;
    case 'MISS': {
      const parts = [`${CACHE_NAME}; fwd=uri-miss`];
      if (served.fwdStatus !== undefined) parts.push(`fwd-status=${served.fwdStatus}`);
      if (served.stored) parts.push('stored', `ttl=${ttl}`);
      if (served.detail === 'coalesced') parts.push('collapsed');
      return parts.join('; ');
    }
  }
}

export function sendServed(
  reply: FastifyReply,
  served: Served,
  extraHeaders: Record<string, string>,
): FastifyReply {
  const now = Date.now();
  const { entry } = served;
  reply
    .code(entry.status)
    .headers(extraHeaders)
    .header('content-type', entry.contentType)
    .header('x-cache', served.source)
    .header('cache-status', cacheStatus(served, now))
    .header('age', String(ageSeconds(entry.storedAt, now)))
    .header(
      'cache-control',
      served.stored
        ? `public, max-age=${Math.max(0, ttlSeconds(entry.expiresAt, now))}`
        : 'no-store',
    );
  return reply.send(entry.body);
}

/** The L1 fast path: same headers, without building a Served object. */
export function sendL1(
  reply: FastifyReply,
  entry: CacheEntry,
  extraHeaders: Record<string, string>,
): FastifyReply {
  return sendServed(reply, { entry, source: 'L1', stored: true }, extraHeaders);
}
