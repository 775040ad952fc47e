/**
 * Timeouts for hot-path calls (every Redis command). Instead of one timer per call, a deadline
 * is an entry in a queue per duration (so each queue is in deadline order) that a single
 * interval sweeps every few milliseconds: arming costs an array push, disarming a flag. A
 * deadline may fire up to one sweep late.
 */
import { TiercacheError } from './errors.ts';

const SWEEP_EVERY_MS = 5;
/** Sweeps with nothing armed before the interval stops (re-arming it per call would cost more). */
const IDLE_SWEEPS_BEFORE_STOP = 200;

/** An armed deadline: `onExpire` runs once it passes, unless `disarm()` came first. */
export interface Deadline {
  disarm(): void;
}

class Armed implements Deadline {
  readonly at: number;
  /** Dropped on disarm: a disarmed entry may wait behind a slow one, and must not keep its call's result alive. */
  onExpire: (() => void) | undefined;

  constructor(at: number, onExpire: () => void) {
    this.at = at;
    this.onExpire = onExpire;
  }

  disarm(): void {
    this.onExpire = undefined;
  }
}

/** Armed deadlines by duration; entries leave from the front once disarmed or expired. */
const queues = new Map<number, { entries: Armed[]; head: number }>();
let sweeper: NodeJS.Timeout | undefined;
let idleSweeps = 0;

function sweep(): void {
  const now = performance.now();
  let armed = 0;
  for (const queue of queues.values()) {
    const { entries } = queue;
    let { head } = queue;
    while (head < entries.length) {
      const d = entries[head]!;
      const onExpire = d.onExpire;
      if (onExpire) {
        if (now < d.at) break;
        d.onExpire = undefined;
        onExpire();
      }
      head++;
    }
    // Compact once the consumed front outweighs what is left.
    if (head > 1024 && head * 2 > entries.length) {
      queue.entries = entries.slice(head);
      head = 0;
    }
    queue.head = head;
    armed += queue.entries.length - head;
  }
  idleSweeps = armed === 0 ? idleSweeps + 1 : 0;
  if (idleSweeps >= IDLE_SWEEPS_BEFORE_STOP) {
    clearInterval(sweeper);
    sweeper = undefined;
    queues.clear();
  }
}

/** Runs `onExpire` in about `ms` unless disarmed first. */
export function armDeadline(ms: number, onExpire: () => void): Deadline {
  const d = new Armed(performance.now() + ms, onExpire);
  let queue = queues.get(ms);
  if (!queue) {
    queue = { entries: [], head: 0 };
    queues.set(ms, queue);
  }
  queue.entries.push(d);
  if (!sweeper) {
    idleSweeps = 0;
    sweeper = setInterval(sweep, SWEEP_EVERY_MS);
    sweeper.unref();
  }
  return d;
}

/** The error a call that ran out of time fails with. */
export function timeoutError(what: string, ms: number): TiercacheError {
  return new TiercacheError('TIMEOUT', `${what} timed out after ${ms} ms`);
}

/**
 * Hands `promise`'s outcome to `onValue` or `onError`, or a TIMEOUT error to `onError` once `ms`
 * have passed — exactly once: an outcome that arrives after its deadline fired is dropped.
 */
export function settleWithin<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
  onValue: (value: T) => void,
  onError: (err: unknown) => void,
): void {
  let settled = false;
  const deadline = armDeadline(ms, () => {
    settled = true;
    onError(timeoutError(what, ms));
  });
  promise.then(
    (value) => {
      if (settled) return;
      settled = true;
      deadline.disarm();
      onValue(value);
    },
    (err: unknown) => {
      if (settled) return;
      settled = true;
      deadline.disarm();
      onError(err);
    },
  );
}

/** Rejects with a TIMEOUT error when `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => settleWithin(promise, ms, what, resolve, reject));
}
