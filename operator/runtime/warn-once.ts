/**
 * Warnings that are not repeated every reconcile (reconciles run every ~250 ms while work is
 * under way): the same key says so at most once a minute.
 */
const WARN_EVERY_MS = 60_000;

export class WarnOnce {
  readonly #warned = new Map<string, number>();

  /** True the first time `key` is asked about in a minute. */
  first(key: string): boolean {
    const now = Date.now();
    for (const [k, at] of this.#warned) if (now - at > WARN_EVERY_MS) this.#warned.delete(k);
    if (this.#warned.has(key)) return false;
    this.#warned.set(key, now);
    return true;
  }
}
