/**
 * Writing a cached answer: the body as stored (Buffer, binary-safe) or in the compressed form
 * the client accepts, plus where it came from — `X-Cache`, an RFC 9211 `Cache-Status`, `Age`,
 * a matching `Cache-Control` — and a strong `ETag`, answering `If-None-Match` with a 304.
 */
import type { FastifyReply } from 'fastify';
import { settleWithin, withTimeout } from '../../lib/timeout.ts';
import { type CacheEntry, isCompressible } from '../cache/entry.ts';
import { ageSeconds, ttlSeconds } from '../cache/policy.ts';
import type { Served, Source } from '../cache/tiered.ts';
import type { RouteLatency } from '../latency.ts';
import type { UpstreamResponse } from '../upstreams/types.ts';
import {
  compressedBody,
  type Encoding,
  etagOf,
  matchesIfNoneMatch,
  pickEncoding,
} from './representation.ts';

export const CACHE_NAME = 'tiercache';

/**
 * What every answer of one data route class carries: its fixed headers (CORS with `*`, the
 * demo label), its deadline (REQUEST_TIMEOUT) and where its latency is counted.
 */
export interface RouteAnswers {
  headers: Record<string, string>;
  deadlineMs: number;
  latency: RouteLatency;
}

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
      // Answered by the shield tier's proxy rather than the origin (SHIELD_URL).
      if (served.detail === 'shield') parts.push('detail=shield');
      return parts.join('; ');
    }
  }
}

/** Every header a cached (or passed-through) answer carries. */
export function servedHeaders(
  served: Served,
  extraHeaders: Record<string, string>,
  now: number,
): Record<string, string | number> {
  const { entry } = served;
  return {
    ...extraHeaders,
    'content-type': entry.contentType,
    'content-length': entry.body.length,
    'x-cache': served.source,
    ...ageHeaders(served, now),
    ...(entry.location !== undefined ? { location: entry.location } : {}),
  };
}

/** The headers of an answer that change as it ages (by the second). */
function ageHeaders(
  served: Served,
  now: number,
): { 'cache-status': string; age: string; 'cache-control': string } {
  const { entry } = served;
  return {
    'cache-status': cacheStatus(served, now),
    age: String(ageSeconds(entry.storedAt, now)),
    'cache-control': served.stored
      ? `public, max-age=${Math.max(0, ttlSeconds(entry.expiresAt, now))}`
      : 'no-store',
  };
}

/**
 * Writes an answer straight to the socket: it is already a complete HTTP response (status,
 * headers, body bytes), so nothing of fastify's send pipeline (hooks, serialisation) applies,
 * and skipping it keeps the hit paths close to a bare server.
 */
function writeRaw(
  reply: FastifyReply,
  status: number,
  headers: Record<string, string | number>,
  body: Buffer,
): FastifyReply {
  writeHeadRaw(reply, status, headers);
  reply.raw.end(body);
  return reply;
}

/** Writes an answer's status and headers straight to the socket; the body follows on `reply.raw`. */
export function writeHeadRaw(
  reply: FastifyReply,
  status: number,
  headers: Record<string, string | number>,
): void {
  // Headers fastify plugins set in their hooks (CORS, rate limits) live on the reply, and a
  // raw write would drop them: they go first, the answer's own headers win over them.
  const fromHooks = reply.getHeaders() as Record<string, string | number | string[]>;
  const all = isEmpty(fromHooks) ? headers : merged(fromHooks, headers);
  // Hijacked only once the headers are accepted: if writeHead throws (a header value Node
  // refuses), fastify still owns the reply and its error handler answers.
  reply.raw.writeHead(status, all);
  reply.hijack();
}

/**
 * Answers with a user's own upstream answer, passed through (never stored): marked private so
 * no shared cache between the proxy and the client keeps it either.
 */
export function sendPassedThrough(
  reply: FastifyReply,
  pending: Promise<UpstreamResponse>,
  answers: RouteAnswers,
  startedAt: number,
): void {
  settleWithin(
    pending,
    answers.deadlineMs,
    ANSWER,
    (res) => {
      try {
        answers.latency.BYPASS.since(startedAt);
        writeRaw(
          reply,
          res.status,
          {
            ...answers.headers,
            'content-type': res.contentType,
            'content-length': res.body.length,
            'x-cache': 'BYPASS',
            'cache-status': `${CACHE_NAME}; fwd=bypass; fwd-status=${res.status}`,
            'cache-control': 'private, no-store',
            ...(res.location !== undefined ? { location: res.location } : {}),
          },
          res.body,
        );
      } catch (err) {
        failReply(reply, err);
      }
    },
    (err: unknown) => failReply(reply, err),
  );
}

export function sendServed(
  reply: FastifyReply,
  served: Served,
  answers: RouteAnswers,
  startedAt: number,
): FastifyReply {
  const { entry } = served;
  answers.latency[served.source].since(startedAt);
  const encoding = encodingFor(reply, entry);
  const headers = withRepresentation(
    entry,
    encoding,
    servedHeaders(served, answers.headers, Date.now()),
  );
  return writeEntry(reply, entry, encoding, headers);
}

/** The encoding to send an entry in: one the client accepts, for a compressible 200. */
function encodingFor(reply: FastifyReply, entry: CacheEntry): Encoding | undefined {
  return entry.status === 200 && isCompressible(entry)
    ? pickEncoding(reply.request.headers['accept-encoding'])
    : undefined;
}

/** The headers of one representation: its ETag, Vary, and its encoding and length. */
function withRepresentation(
  entry: CacheEntry,
  encoding: Encoding | undefined,
  headers: Record<string, string | number>,
): Record<string, string | number> {
  if (entry.status !== 200) return headers;
  const out: Record<string, string | number> = { ...headers, etag: etagOf(entry, encoding) };
  if (isCompressible(entry)) out.vary = 'accept-encoding';
  if (encoding) {
    out['content-encoding'] = encoding;
    out['content-length'] = compressedBody(entry, encoding).length;
  }
  return out;
}

/** Writes an entry in its representation, or a 304 when the client holds it already. */
function writeEntry(
  reply: FastifyReply,
  entry: CacheEntry,
  encoding: Encoding | undefined,
  headers: Record<string, string | number>,
): FastifyReply {
  const etag = headers.etag as string | undefined;
  if (etag && matchesIfNoneMatch(reply.request.headers['if-none-match'], etag)) {
    const { 'content-type': _t, 'content-length': _l, 'content-encoding': _e, ...rest } = headers;
    return writeRaw(reply, 304, rest, EMPTY);
  }
  return writeRaw(
    reply,
    entry.status,
    headers,
    encoding ? compressedBody(entry, encoding) : entry.body,
  );
}

/** A body of no bytes (a 304's, a streamed miss's placeholder entry). */
export const EMPTY = Buffer.alloc(0);

/** The hooks' headers under the answer's own, except Vary, which lists both (Origin, Accept-Encoding). */
function merged(
  fromHooks: Record<string, string | number | string[]>,
  headers: Record<string, string | number>,
): Record<string, string | number | string[]> {
  const all = { ...fromHooks, ...headers };
  const hooksVary = fromHooks.vary;
  if (hooksVary !== undefined && headers.vary !== undefined)
    all.vary = `${String(hooksVary)}, ${headers.vary}`;
  return all;
}

function isEmpty(o: object): boolean {
  for (const _ in o) return false;
  return true;
}

/**
 * What a request waits for longest (REQUEST_TIMEOUT): past it the client gets a 504 TIMEOUT,
 * and what it waited for goes on (a fetch still fills the cache for the next request).
 */
const ANSWER = 'the answer (REQUEST_TIMEOUT; the fetch goes on and fills the cache)';

export function withinRequestTimeout<T>(work: Promise<T>, deadlineMs: number): Promise<T> {
  return withTimeout(work, deadlineMs, ANSWER);
}

/**
 * Answers with what `pending` serves once it settles, or with a 504 once `deadlineMs` has
 * passed; a failure reaches fastify's error handler. Returns nothing, so a handler can hand
 * fastify `undefined` instead of a promise: fastify would add a promise step of its own to
 * every L2 hit and miss.
 */
export function sendWhenServed(
  reply: FastifyReply,
  pending: Promise<Served>,
  answers: RouteAnswers,
  startedAt: number,
  /** An answer that may already be streaming (an image miss): then it finishes on its own. */
  streamed?: { readonly started: boolean },
): void {
  settleWithin(
    pending,
    answers.deadlineMs,
    ANSWER,
    (served) => {
      if (streamed?.started) return;
      try {
        sendServed(reply, served, answers, startedAt);
      } catch (err) {
        failReply(reply, err);
      }
    },
    (err: unknown) => {
      if (!streamed?.started) failReply(reply, err);
    },
  );
}

function failReply(reply: FastifyReply, err: unknown): void {
  if (reply.raw.headersSent) reply.raw.destroy(err as Error);
  else reply.send(err);
}

/** An answer assembled from several cached entries: JSON, with where the weakest part came from. */
export function sendJson(
  reply: FastifyReply,
  body: unknown,
  source: Source,
  answers: RouteAnswers,
  startedAt: number,
): FastifyReply {
  answers.latency[source].since(startedAt);
  return reply
    .headers(answers.headers)
    .header('x-cache', source)
    .header(
      'cache-status',
      `${CACHE_NAME}; ${source === 'MISS' ? 'fwd=uri-miss' : 'hit'}; detail=${source.toLowerCase()}`,
    )
    .send(body);
}

/**
 * Headers of an L1 hit per representation, built once per entry and encoding; only the ones
 * that count seconds (Age, Cache-Status's ttl, Cache-Control's max-age) are updated in place
 * when the second changes. Rebuilding every header each second made new objects for most of a
 * Zipf tail's hits, and those that outlived a scavenge made its pauses longer. An object is
 * only read by writeHead, synchronously, so updating it in place is safe.
 */
interface L1Headers {
  second: number;
  byEncoding: Partial<Record<Encoding | 'identity', Record<string, string | number>>>;
}
const l1HeaderMemo = new WeakMap<CacheEntry, L1Headers>();

function l1Headers(
  entry: CacheEntry,
  encoding: Encoding | undefined,
  extraHeaders: Record<string, string>,
  now: number,
): Record<string, string | number> {
  const second = Math.floor(now / 1000);
  let memo = l1HeaderMemo.get(entry);
  if (!memo) {
    memo = { second, byEncoding: {} };
    l1HeaderMemo.set(entry, memo);
  } else if (memo.second !== second) {
    memo.second = second;
    const aged = ageHeaders(l1Served(entry), now);
    for (const headers of Object.values(memo.byEncoding)) Object.assign(headers, aged);
  }
  const form = encoding ?? 'identity';
  let headers = memo.byEncoding[form];
  if (!headers) {
    const base = servedHeaders(l1Served(entry), extraHeaders, now);
    headers = withRepresentation(entry, encoding, base);
    memo.byEncoding[form] = headers;
  }
  return headers;
}

/** An L1 hit as Served, made only when its headers are (re)built: not on every hit. */
function l1Served(entry: CacheEntry): Served {
  return { entry, source: 'L1', stored: true };
}

/** The L1 fast path: as sendServed, with the headers memoised per entry, encoding and second. */
export function sendL1(
  reply: FastifyReply,
  entry: CacheEntry,
  answers: RouteAnswers,
  startedAt: number,
): FastifyReply {
  answers.latency.L1.since(startedAt);
  const encoding = encodingFor(reply, entry);
  return writeEntry(
    reply,
    entry,
    encoding,
    l1Headers(entry, encoding, answers.headers, Date.now()),
  );
}
