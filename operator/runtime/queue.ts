/**
 * A keyed work queue, like client-go's: a key is queued at most once, never handled by two
 * workers at once (added again while in flight, it runs once more afterwards), and a failed
 * key comes back after an exponential back-off that resets on success.
 */

export interface QueueHooks {
  onDepth?: (depth: number) => void;
  onAdd?: () => void;
  onRetry?: () => void;
}

const BASE_DELAY_MS = 200;
const MAX_DELAY_MS = 60_000;

export class WorkQueue {
  readonly #queued: string[] = [];
  readonly #queuedSet = new Set<string>();
  readonly #active = new Set<string>();
  readonly #dirty = new Set<string>();
  readonly #failures = new Map<string, number>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #hooks: QueueHooks;
  readonly #idle: (() => void)[] = [];
  #stopped = false;

  constructor(hooks: QueueHooks = {}) {
    this.#hooks = hooks;
  }

  add(key: string): void {
    if (this.#stopped) return;
    this.#hooks.onAdd?.();
    if (this.#active.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#queuedSet.has(key)) return;
    this.#queuedSet.add(key);
    this.#queued.push(key);
    this.#hooks.onDepth?.(this.#queued.length);
    this.#idle.shift()?.();
  }

  /** Adds the key after `ms` (an earlier pending delay for it is kept if sooner). */
  addAfter(key: string, ms: number): void {
    if (this.#stopped || this.#timers.has(key)) return;
    const timer = setTimeout(() => {
      this.#timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.#timers.set(key, timer);
  }

  /** Adds the key again after its back-off (200 ms doubling, at most a minute). */
  retry(key: string): number {
    const failures = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, failures);
    const delay = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (failures - 1));
    this.#hooks.onRetry?.();
    this.addAfter(key, delay);
    return delay;
  }

  /** The key succeeded: its next failure starts the back-off again from the beginning. */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  get depth(): number {
    return this.#queued.length;
  }

  /** Runs `worker` on queued keys with up to `concurrency` keys at a time, until stop(). */
  async run(worker: (key: string) => Promise<void>, concurrency = 1): Promise<void> {
    const loop = async () => {
      while (!this.#stopped) {
        const key = this.#queued.shift();
        if (key === undefined) {
          await new Promise<void>((resolve) => this.#idle.push(resolve));
          continue;
        }
        this.#queuedSet.delete(key);
        this.#hooks.onDepth?.(this.#queued.length);
        this.#active.add(key);
        try {
          await worker(key);
        } finally {
          this.#active.delete(key);
          if (this.#dirty.delete(key)) this.add(key);
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#timers.clear();
    for (const wake of this.#idle.splice(0)) wake();
  }
}
