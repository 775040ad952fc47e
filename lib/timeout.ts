/**
 * Timeouts for hot-path calls (every Redis command): instead of one timer per call, armed
 * deadlines sit in a set that a single interval sweeps every few milliseconds, so bounding a
 * call costs a set insert and delete. A deadline may fire up to one sweep late.
 */
import { TiercacheError } from './errors.ts';

const SWEEP_EVERY_MS = 5;

/** An armed deadline: `onExpire` runs once it passes, unless `disarm()` came first. */
export interface Deadline {
  disarm(): void;
}

interface Armed extends Deadline {
  at: number;
  onExpire: () => void;
}

const armed = new Set<Armed>();
let sweeper: NodeJS.Timeout | undefined;

function sweep(): void {
  const now = performance.now();
  for (const d of armed) {
    if (now >= d.at) {
      armed.delete(d);
      d.onExpire();
    }
  }
  if (armed.size === 0) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

function disarm(this: Armed): void {
  armed.delete(this);
}

/** Runs `onExpire` in about `ms` unless disarmed first. */
export function armDeadline(ms: number, onExpire: () => void): Deadline {
  const d: Armed = { at: performance.now() + ms, onExpire, disarm };
  armed.add(d);
  if (!sweeper) {
    sweeper = setInterval(sweep, SWEEP_EVERY_MS);
    sweeper.unref();
  }
  return d;
}

/** The error a call that ran out of time fails with. */
export function timeoutError(what: string, ms: number): TiercacheError {
  return new TiercacheError('TIMEOUT', `${what} timed out after ${ms} ms`);
}

/** Rejects with a TIMEOUT error when `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const deadline = armDeadline(ms, () => reject(timeoutError(what, ms)));
    promise.then(
      (value) => {
        deadline.disarm();
        resolve(value);
      },
      (err) => {
        deadline.disarm();
        reject(err);
      },
    );
  });
}
