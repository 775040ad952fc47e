/**
 * This replica's copy of the back-off deadlines every replica shares through Redis (a 429
 * seen by one holds them all). Reading Redis before every upstream call would add a round
 * trip to every miss, so the copy is read instead and refreshed in the background about once
 * a second; only the first call to an upstream waits for its value. A deadline this replica
 * sets is in its copy at once.
 */
import type { SharedBackoff } from './http.ts';

/** How old a copy may be before a call refreshes it (in the background). */
const BACKOFF_REFRESH_MS = 1000;

interface Copy {
  until: number;
  readAt: number;
  refreshing?: Promise<number> | undefined;
}

export class SharedBackoffCopy implements SharedBackoff {
  readonly #store: SharedBackoff;
  readonly #copies = new Map<string, Copy>();
  readonly #now: () => number;

  constructor(store: SharedBackoff, now: () => number = Date.now) {
    this.#store = store;
    this.#now = now;
  }

  /** The deadline for `upstream`: the copy's, refreshed behind it when older than a second. */
  until(upstream: string): Promise<number> {
    const copy = this.#copies.get(upstream);
    if (!copy) return this.#refresh(upstream, { until: 0, readAt: 0 });
    if (copy.readAt === 0 && copy.refreshing) return copy.refreshing; // the first read, still out
    if (this.#now() - copy.readAt >= BACKOFF_REFRESH_MS && !copy.refreshing)
      void this.#refresh(upstream, copy);
    return Promise.resolve(copy.until);
  }

  async hold(upstream: string, untilMs: number): Promise<void> {
    const copy = this.#copies.get(upstream);
    this.#copies.set(upstream, {
      until: Math.max(untilMs, copy?.until ?? 0),
      readAt: this.#now(),
    });
    await this.#store.hold(upstream, untilMs);
  }

  #refresh(upstream: string, copy: Copy): Promise<number> {
    const refreshing = this.#store.until(upstream).then(
      (until) => {
        // A deadline this replica set meanwhile is kept: Redis may not have it yet.
        const mine = this.#copies.get(upstream)?.until ?? 0;
        const next = Math.max(until, mine > this.#now() ? mine : 0);
        this.#copies.set(upstream, { until: next, readAt: this.#now() });
        return next;
      },
      () => {
        // Redis cannot say: keep what we had, and ask again a second later.
        this.#copies.set(upstream, { until: copy.until, readAt: this.#now() });
        return copy.until;
      },
    );
    this.#copies.set(upstream, { ...copy, refreshing });
    return refreshing;
  }
}
