/**
 * Respecting an upstream's quota: after a 429 no request goes out until the Retry-After time
 * (or an exponential back-off when none is given) has passed. Pure; the clock is passed in.
 */
const FIRST_BACKOFF_MS = 1000;
const MAX_BACKOFF_MS = 60_000;

/** Parses Retry-After (delta-seconds or HTTP-date) into ms from `now`; undefined when absent or bad. */
export function parseRetryAfter(header: string | undefined, now: number): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return Math.min(Number(trimmed) * 1000, MAX_BACKOFF_MS);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.min(Math.max(0, date - now), MAX_BACKOFF_MS);
}

export class RateLimitGate {
  #blockedUntil = 0;
  #lastBackoffMs = 0;
  #strikes = 0;

  /** ms left before requests may go out again; 0 when they may go now. */
  waitMs(now: number): number {
    return Math.max(0, this.#blockedUntil - now);
  }

  /**
   * The same for background refreshes, which are shed first: they wait one more back-off
   * after the gate opens, so the quota that comes back goes to clients waiting for an answer.
   */
  backgroundWaitMs(now: number): number {
    return Math.max(0, this.#blockedUntil + this.#lastBackoffMs - now);
  }

  /** Records an upstream answer; a 429 closes the gate, anything else resets the back-off. */
  record(status: number, retryAfter: string | undefined, now: number): void {
    if (status !== 429) {
      this.#strikes = 0;
      return;
    }
    this.#strikes += 1;
    const backoff = Math.min(FIRST_BACKOFF_MS * 2 ** (this.#strikes - 1), MAX_BACKOFF_MS);
    this.#lastBackoffMs = parseRetryAfter(retryAfter, now) ?? backoff;
    this.#blockedUntil = now + this.#lastBackoffMs;
  }
}
