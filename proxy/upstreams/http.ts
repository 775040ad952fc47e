/**
 * Upstream HTTP through undici: one keep-alive pool per origin, a timeout on every request,
 * a body size limit, and a 429 gate per origin. Errors become TiercacheErrors; the URL in a message or
 * log line never carries credentials.
 */
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { Agent, request } from 'undici';
import { TiercacheError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/log.ts';
import { MAX_BODY_BYTES } from '../cache/entry.ts';
import { redactUrl } from '../cache/keys.ts';
import type { ProxyMetrics } from '../metrics.ts';
import { RateLimitGate } from './backoff.ts';
import { type BodySink, bodySink, isBackground } from './call-context.ts';
import type { UpstreamResponse } from './types.ts';

const CONNECTIONS_PER_ORIGIN = 64;
/** Background refreshes may use at most this many of an origin's connections at once. */
const BACKGROUND_MAX_IN_FLIGHT = 16;

const headerValue = (h: string | string[] | undefined): string | undefined =>
  Array.isArray(h) ? h[0] : h;

const contentTypeOf = (headers: Record<string, string | string[] | undefined>): string =>
  headerValue(headers['content-type']) ?? 'application/octet-stream';

const isIdentity = (encoding: string | undefined): boolean =>
  !encoding || encoding.trim().toLowerCase() === 'identity';

/**
 * The body as the client should get it: a compressed answer (we ask for identity, some servers
 * compress anyway) is decoded, since entries are stored and served without their encoding; an
 * encoding Node cannot decode is refused rather than stored raw under the wrong headers.
 */
function decodeBody(raw: Buffer, encoding: string | undefined, upstream: string): Buffer {
  if (isIdentity(encoding)) return raw;
  const coding = encoding!.trim().toLowerCase();
  try {
    if (coding === 'gzip' || coding === 'x-gzip')
      return gunzipSync(raw, { maxOutputLength: MAX_BODY_BYTES });
    if (coding === 'br') return brotliDecompressSync(raw, { maxOutputLength: MAX_BODY_BYTES });
    if (coding === 'deflate') return inflateSync(raw, { maxOutputLength: MAX_BODY_BYTES });
  } catch (err) {
    throw new TiercacheError(
      'UPSTREAM_FAILED',
      `${upstream} answer could not be decoded (${coding}): ${(err as Error).message}`,
    );
  }
  throw new TiercacheError(
    'UPSTREAM_FAILED',
    `${upstream} answered with an unsupported Content-Encoding: ${coding}`,
  );
}

/** Where replicas share a back-off: the time until which an upstream must not be called. */
export interface SharedBackoff {
  until(upstream: string): Promise<number>;
  hold(upstream: string, untilMs: number): Promise<void>;
}

export interface HttpUpstreamOptions {
  name: string;
  timeoutMs: number;
  log: Logger;
  metrics: ProxyMetrics;
  /** With L2: a 429 seen by one replica slows every replica, not just the one that saw it. */
  shared?: SharedBackoff | undefined;
  /** Another tiercache proxy (the shield tier): its Age and X-Cache headers are read too. */
  tiercache?: boolean | undefined;
}

/** What a shield's headers say of its copy (HttpUpstreamOptions.tiercache). */
function shieldHeaders(
  headers: Record<string, string | string[] | undefined>,
): Pick<UpstreamResponse, 'ageMs' | 'shieldCache'> {
  const age = Number(headerValue(headers.age));
  return {
    ...(Number.isFinite(age) && age > 0 ? { ageMs: age * 1000 } : {}),
    shieldCache: headerValue(headers['x-cache']),
  };
}

export class HttpUpstream {
  readonly name: string;
  /**
   * One 429 gate per origin: TMDB's API and its image CDN are separate services with their own
   * limits, so a 429 from the API does not stop image misses.
   */
  readonly #gates = new Map<string, RateLimitGate>();
  /** Calls in flight per origin (background ones are shed when many are). */
  readonly #inFlight = new Map<string, number>();
  readonly #agent: Agent;
  readonly #opts: HttpUpstreamOptions;
  readonly #log: Logger;

  constructor(opts: HttpUpstreamOptions) {
    this.name = opts.name;
    this.#opts = opts;
    this.#log = opts.log.child({ component: 'upstream', upstream: opts.name });
    this.#agent = new Agent({
      connections: CONNECTIONS_PER_ORIGIN,
      headersTimeout: opts.timeoutMs,
      bodyTimeout: opts.timeoutMs,
    });
  }

  /** The 429 gate of the origin `url` goes to. */
  gateOf(url: URL): RateLimitGate {
    let gate = this.#gates.get(url.origin);
    if (!gate) {
      gate = new RateLimitGate();
      this.#gates.set(url.origin, gate);
    }
    return gate;
  }

  async get(url: URL, headers: Record<string, string> = {}): Promise<UpstreamResponse> {
    const gate = this.gateOf(url);
    // Shared between replicas per origin too (the upstream's name and the origin's host).
    const sharedKey = `${this.name}@${url.host}`;
    const sharedUntil = this.#opts.shared
      ? await this.#opts.shared.until(sharedKey).catch(() => 0)
      : 0;
    const background = isBackground();
    const now = Date.now();
    const wait = Math.max(
      background ? gate.backgroundWaitMs(now) : gate.waitMs(now),
      sharedUntil - now,
    );
    const busy = (this.#inFlight.get(url.origin) ?? 0) >= BACKGROUND_MAX_IN_FLIGHT;
    if (background && (wait > 0 || busy)) {
      this.#opts.metrics.upstreamShed.labels(this.name).inc();
      throw new TiercacheError(
        'UPSTREAM_RATE_LIMITED',
        `${this.name} refresh shed: ${wait > 0 ? 'the upstream is backing off' : 'the upstream is busy'}`,
        { retryAfterSeconds: Math.max(1, Math.ceil(wait / 1000)) },
      );
    }
    if (wait > 0) {
      this.#opts.metrics.upstreamBackoff.labels(this.name).inc();
      throw new TiercacheError(
        'UPSTREAM_RATE_LIMITED',
        `${this.name} asked us to slow down; retry in ${Math.ceil(wait / 1000)} s`,
        {
          retryAfterSeconds: Math.ceil(wait / 1000),
        },
      );
    }
    const started = performance.now();
    const safeUrl = redactUrl(url.toString());
    this.#inFlight.set(url.origin, (this.#inFlight.get(url.origin) ?? 0) + 1);
    let streaming: BodySink | undefined;
    try {
      const res = await request(url, {
        method: 'GET',
        headers: { accept: '*/*', 'accept-encoding': 'identity', ...headers },
        dispatcher: this.#agent,
        signal: AbortSignal.timeout(this.#opts.timeoutMs),
      });
      const tooLarge = () => {
        res.body.destroy();
        return new TiercacheError(
          'UPSTREAM_FAILED',
          `${this.name} answer is larger than ${MAX_BODY_BYTES} bytes`,
        );
      };
      const declared = res.headers['content-length'];
      if (Number(declared ?? 0) > MAX_BODY_BYTES) throw tooLarge();
      const encoding = headerValue(res.headers['content-encoding']);
      // A 200 the request's client may have as it arrives (an image miss, call-context.ts),
      // unless it must be decoded first.
      const sink = res.statusCode === 200 && isIdentity(encoding) ? bodySink() : undefined;
      if (
        sink?.start({
          contentType: contentTypeOf(res.headers),
          length: declared === undefined ? undefined : Number(declared),
        })
      )
        streaming = sink;
      // Collected into one ordinary Buffer (not undici's ArrayBuffer): cached bodies are
      // written to sockets many times, and Node writes plain Buffers fastest. The cap holds
      // while it streams: a chunked answer has no length to check first.
      const chunks: Buffer[] = [];
      let received = 0;
      for await (const chunk of res.body) {
        received += (chunk as Buffer).length;
        if (received > MAX_BODY_BYTES) throw tooLarge();
        chunks.push(chunk as Buffer);
        streaming?.chunk(chunk as Buffer);
      }
      streaming?.end();
      streaming = undefined;
      const body = decodeBody(Buffer.concat(chunks), encoding, this.name);
      const retryAfter = res.headers['retry-after'];
      gate.record(
        res.statusCode,
        Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
        Date.now(),
      );
      this.#opts.metrics.upstreamSeconds
        .labels(this.name, String(res.statusCode))
        .observe((performance.now() - started) / 1000);
      if (res.statusCode === 429) {
        const waitMs = gate.waitMs(Date.now());
        await this.#opts.shared?.hold(sharedKey, Date.now() + waitMs).catch(() => undefined);
        const wait = Math.max(1, Math.ceil(waitMs / 1000));
        this.#log.warn(
          { url: safeUrl, retryAfterSeconds: wait },
          'upstream rate limit hit; backing off',
        );
        throw new TiercacheError(
          'UPSTREAM_RATE_LIMITED',
          `${this.name} rate limit reached; retry in ${wait} s`,
          {
            retryAfterSeconds: wait,
          },
        );
      }
      if (res.statusCode >= 400)
        this.#log.warn({ url: safeUrl, status: res.statusCode }, 'upstream answered with an error');
      return {
        status: res.statusCode,
        contentType: contentTypeOf(res.headers),
        body,
        ...(res.statusCode >= 300 && res.statusCode < 400
          ? { location: headerValue(res.headers.location) }
          : {}),
        ...(this.#opts.tiercache ? shieldHeaders(res.headers) : {}),
      };
    } catch (err) {
      streaming?.fail(err);
      if (err instanceof TiercacheError) throw err;
      const timedOut =
        (err as Error).name === 'TimeoutError' || /timeout/i.test((err as Error).name ?? '');
      this.#opts.metrics.upstreamSeconds
        .labels(this.name, timedOut ? 'timeout' : 'error')
        .observe((performance.now() - started) / 1000);
      this.#log.warn({ url: safeUrl, err: (err as Error).message }, 'upstream request failed');
      throw new TiercacheError(
        timedOut ? 'UPSTREAM_TIMEOUT' : 'UPSTREAM_FAILED',
        timedOut
          ? `${this.name} did not answer within ${this.#opts.timeoutMs} ms`
          : `${this.name} could not be reached`,
      );
    } finally {
      this.#inFlight.set(url.origin, this.#inFlight.get(url.origin)! - 1);
    }
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}
