/**
 * Circuit breaker for the L2 tier. After `failureThreshold` consecutive failures it opens and
 * callers skip Redis for `cooldownMs`; then it lets exactly one probe through (half-open).
 * A successful probe closes it, a failed one opens it again. Pure: the clock is injected.
 */
export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  failureThreshold: number;
  cooldownMs: number;
  now?: () => number;
}

export class CircuitBreaker {
  #failures = 0;
  #openedAt = 0;
  #state: BreakerState = 'closed';
  #probing = false;
  readonly #threshold: number;
  readonly #cooldownMs: number;
  readonly #now: () => number;
  /** Called on every state change, for metrics and logs. */
  onChange: ((state: BreakerState) => void) | undefined;

  constructor(opts: BreakerOptions) {
    this.#threshold = opts.failureThreshold;
    this.#cooldownMs = opts.cooldownMs;
    this.#now = opts.now ?? Date.now;
  }

  get state(): BreakerState {
    return this.#state;
  }

  /** Like allow(), without taking the probe slot: for choosing between targets. */
  wouldAllow(): boolean {
    if (this.#state === 'closed') return true;
    if (this.#state === 'open') return this.#now() - this.#openedAt >= this.#cooldownMs;
    return !this.#probing;
  }

  /** True when a call may go to Redis now. In half-open, only the single probe passes. */
  allow(): boolean {
    if (this.#state === 'closed') return true;
    if (this.#state === 'open') {
      if (this.#now() - this.#openedAt < this.#cooldownMs) return false;
      this.#set('half-open');
    }
    if (this.#probing) return false;
    this.#probing = true;
    return true;
  }

  success(): void {
    this.#failures = 0;
    this.#probing = false;
    if (this.#state !== 'closed') this.#set('closed');
  }

  failure(): void {
    this.#probing = false;
    this.#failures += 1;
    if (
      this.#state === 'half-open' ||
      (this.#state === 'closed' && this.#failures >= this.#threshold)
    ) {
      this.#openedAt = this.#now();
      this.#set('open');
    }
  }

  #set(state: BreakerState): void {
    this.#state = state;
    this.onChange?.(state);
  }
}
