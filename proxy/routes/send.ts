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

/** Headers of an L1 hit, rebuilt at most once a second per entry (Age and ttl count seconds). */
interface L1Headers {
  second: number;
  headers: Record<string, string | number>;
}
const l1HeaderMemo = new WeakMap<CacheEntry, L1Headers>();

function l1Headers(
  entry: CacheEntry,
  extraHeaders: Record<string, string>,
  now: number,
): Record<string, string | number> {
  const second = Math.floor(now / 1000);
  const memo = l1HeaderMemo.get(entry);
  if (memo && memo.second === second) return memo.headers;
  const ttl = ttlSeconds(entry.expiresAt, now);
  const headers = {
    ...extraHeaders,
    'content-type': entry.contentType,
    'content-length': entry.body.length,
    'x-cache': 'L1',
    'cache-status': `${CACHE_NAME}; hit; ttl=${ttl}; detail=l1`,
    age: String(ageSeconds(entry.storedAt, now)),
    'cache-control': `public, max-age=${Math.max(0, ttl)}`,
  };
  l1HeaderMemo.set(entry, { second, headers });
  return headers;
}

/**
 * The L1 fast path: the same headers as sendServed, written straight to the socket. A hit
 * needs nothing of fastify's send pipeline (no hooks, no serialisation), and skipping it is
 * what keeps an L1 hit close to a bare server.
 */
export function sendL1(
  reply: FastifyReply,
  entry: CacheEntry,
  extraHeaders: Record<string, string>,
): FastifyReply {
  reply.hijack();
  reply.raw.writeHead(entry.status, l1Headers(entry, extraHeaders, Date.now()));
  reply.raw.end(entry.body);
  return reply;
}
