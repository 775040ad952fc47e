/**
 * An image miss sent as it arrives from the upstream (a BodySink, call-context.ts): the client
 * has the first bytes of a large poster while the rest is still on its way into the cache,
 * instead of waiting for all of it. Its headers say what any miss says, without an ETag (the
 * bytes are not all in yet; the next answer, from the cache, has one).
 */
import type { FastifyReply } from 'fastify';
import type { CacheEntry } from '../cache/entry.ts';
import type { TieredCache } from '../cache/tiered.ts';
import type { BodySink } from '../upstreams/call-context.ts';
import type { CacheSlot } from '../upstreams/types.ts';
import { EMPTY, type RouteAnswers, servedHeaders, writeHeadRaw } from './send.ts';

export class StreamedMiss implements BodySink {
  readonly #reply: FastifyReply;
  readonly #slot: CacheSlot;
  readonly #cache: TieredCache;
  readonly #answers: RouteAnswers;
  readonly #startedAt: number;
  #started = false;

  constructor(
    reply: FastifyReply,
    slot: CacheSlot,
    cache: TieredCache,
    answers: RouteAnswers,
    startedAt: number,
  ) {
    this.#reply = reply;
    this.#slot = slot;
    this.#cache = cache;
    this.#answers = answers;
    this.#startedAt = startedAt;
  }

  get started(): boolean {
    return this.#started;
  }

  start(head: { contentType: string; length: number | undefined }): boolean {
    const reply = this.#reply;
    // Answered already: its REQUEST_TIMEOUT passed before the upstream did.
    if (reply.sent || reply.raw.headersSent) return false;
    const now = Date.now();
    // A chunked answer's size is not known yet: headers as for one L2 takes.
    const kept = this.#cache.storage(this.#slot, 200, head.length ?? 0);
    const entry: CacheEntry = {
      status: 200,
      contentType: head.contentType,
      body: EMPTY,
      storedAt: now,
      expiresAt: now + (kept?.freshMs ?? 0),
      staleUntil: now,
    };
    const headers = servedHeaders(
      { entry, source: 'MISS', fwdStatus: 200, stored: kept !== undefined },
      this.#answers.headers,
      now,
    );
    if (head.length === undefined) delete headers['content-length'];
    else headers['content-length'] = head.length;
    writeHeadRaw(reply, 200, headers);
    this.#answers.latency.MISS.since(this.#startedAt);
    this.#started = true;
    return true;
  }

  chunk(bytes: Buffer): void {
    if (!this.#reply.raw.destroyed) this.#reply.raw.write(bytes);
  }

  end(): void {
    if (!this.#reply.raw.destroyed) this.#reply.raw.end();
  }

  fail(err: unknown): void {
    // Part of the body is out: the client can only learn of the failure from a cut connection.
    this.#reply.raw.destroy(err as Error);
  }
}
