/**
 * What an upstream call carries from the request that made it, without threading it through
 * the cache layer (AsyncLocalStorage carries it through the fetch):
 * - whether it is a background refresh (a stale entry is being served anyway), so the HTTP
 *   layer can shed it before a call a client waits for;
 * - where its body may go as it arrives: an image miss streams to the client that asked while
 *   the cache fills, instead of reaching it only once the whole image is in;
 * - whether another proxy asked it as its shield (shield.ts), which then asks none of its own.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** Takes an upstream body as it arrives. */
export interface BodySink {
  /** The upstream answered 200 with this type (and length, when it said): true to stream it. */
  start(head: { contentType: string; length: number | undefined }): boolean;
  chunk(bytes: Buffer): void;
  end(): void;
  /** The body broke off after start: the client's answer cannot be finished. */
  fail(err: unknown): void;
}

interface CallContext {
  background?: true;
  sink?: BodySink;
  /** The request came from another proxy's shield tier: this one asks no shield of its own. */
  fromShieldClient?: true;
}

const context = new AsyncLocalStorage<CallContext>();

/** A refresh carries no sink: its answer is for the cache, the client had a stale one. */
export function inBackground<T>(fn: () => T): T {
  return context.run({ background: true, ...shieldClientPart() }, fn);
}

export function isBackground(): boolean {
  return context.getStore()?.background === true;
}

/** Runs `fn` so that an upstream body it fetches streams to `sink` too. */
export function streamingTo<T>(sink: BodySink, fn: () => T): T {
  return context.run({ sink, ...shieldClientPart() }, fn);
}

/**
 * Runs `fn` (a request's handling) as asked by another proxy through its shield tier: a miss
 * then goes to the upstream, never to a shield of this proxy's — two proxies that name each
 * other as shield cost an upstream call, not a loop.
 */
export function forShieldClient<T>(fn: () => T): T {
  return context.run({ fromShieldClient: true }, fn);
}

export function isForShieldClient(): boolean {
  return context.getStore()?.fromShieldClient === true;
}

const shieldClientPart = (): Pick<CallContext, 'fromShieldClient'> =>
  isForShieldClient() ? { fromShieldClient: true } : {};

export function bodySink(): BodySink | undefined {
  return context.getStore()?.sink;
}
