/**
 * Timeouts for hot-path calls (every Redis command): instead of one timer per call, pending
 * calls sit in a set that a single interval sweeps every few milliseconds, so bounding a call
 * costs a set insert and delete. A deadline may fire up to one sweep late.
 */
import { TiercacheError } from './errors.ts';

const SWEEP_EVERY_MS = 5;

interface Pending {
  deadline: number;
  fail: () => void;
}

const pending = new Set<Pending>();
let sweeper: NodeJS.Timeout | undefined;

function sweep(): void {
  const now = performance.now();
  for (const p of pending) {
    if (now >= p.deadline) {
      pending.delete(p);
      p.fail();
    }
  }
  if (pending.size === 0) {
    clearInterval(sweeper);
    sweeper = undefined;
  }
}

/** Rejects with a TIMEOUT error when `promise` has not settled within `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const entry: Pending = {
      deadline: performance.now() + ms,
      fail: () => reject(new TiercacheError('TIMEOUT', `${what} timed out after ${ms} ms`)),
    };
    pending.add(entry);
    if (!sweeper) {
      sweeper = setInterval(sweep, SWEEP_EVERY_MS);
      sweeper.unref();
    }
    promise.then(
      (value) => {
        pending.delete(entry);
        resolve(value);
      },
      (err) => {
        pending.delete(entry);
        reject(err);
      },
    );
  });
}
