/**
 * In-process request coalescing: concurrent calls for one key share a single execution of
 * `fn`. The cross-replica half of coalescing (a Redis lease) lives in the tiered cache.
 */
export class Singleflight<T> {
  readonly #inflight = new Map<string, Promise<T>>();

  /** Runs `fn` unless a call for `key` is already under way; `joined` tells which happened. */
  run(key: string, fn: () => Promise<T>): { result: Promise<T>; joined: boolean } {
    const existing = this.#inflight.get(key);
    if (existing) return { result: existing, joined: true };
    const result = fn().finally(() => this.#inflight.delete(key));
    this.#inflight.set(key, result);
    return { result, joined: false };
  }

  has(key: string): boolean {
    return this.#inflight.has(key);
  }
}
