/**
 * Work that need not be repeated every reconcile (they run every ~250 ms while work is under
 * way): what was last done per key, as a digest, and when. The same digest is skipped for a
 * while; after that it is done again, which corrects drift nobody was told about.
 */
export class DoneRecently {
  readonly #last = new Map<string, { digest: string; at: number }>();
  readonly #ms: number;

  constructor(ms: number) {
    this.#ms = ms;
  }

  /** Whether `digest` was done for `key` less than the period ago. */
  fresh(key: string, digest: string): boolean {
    const last = this.#last.get(key);
    return last !== undefined && last.digest === digest && Date.now() - last.at < this.#ms;
  }

  /** `digest` is done for `key`, now. */
  done(key: string, digest: string): void {
    this.#last.set(key, { digest, at: Date.now() });
  }

  forget(key: string): void {
    this.#last.delete(key);
  }
}
