/**
 * Chart series in day chunks (pure). A past day never changes, so its chunk is cached for long;
 * only today's chunk — the open candle — is short-lived. A request names the chunks its range
 * covers; whatever chunks are missing are fetched with one upstream call and split again.
 */

export type Point = [number, number]; // [ms, price]

export const INTERVALS = { hourly: 3_600_000, daily: 86_400_000 } as const;
export type Interval = keyof typeof INTERVALS;
/**
 * Longest range per interval. CoinGecko answers hourly points up to 90 days back and daily
 * beyond; a range of N days touches N + 1 day chunks, so hourly ranges stop at 89 days.
 */
export const MAX_DAYS: Record<Interval, number> = { hourly: 89, daily: 365 };

const DAY = 86_400_000;

export function dayStart(ms: number): number {
  return Math.floor(ms / DAY) * DAY;
}

export function dayLabel(ms: number): string {
  return new Date(dayStart(ms)).toISOString().slice(0, 10);
}

/** The day chunks (their start times, oldest first) covering the last `days` days up to now. */
export function chunksFor(days: number, now: number): number[] {
  const today = dayStart(now);
  return Array.from({ length: days + 1 }, (_, i) => today - (days - i) * DAY);
}

/** One point per interval step: the last price seen in each step (the candle's close). */
export function resample(points: Point[], interval: Interval): Point[] {
  const step = INTERVALS[interval];
  const byStep = new Map<number, Point>();
  for (const [t, p] of points)
    byStep.set(Math.floor(t / step) * step, [Math.floor(t / step) * step, p]);
  return [...byStep.values()].sort((a, b) => a[0] - b[0]);
}

/** Splits points into day chunks keyed by the chunk's start. */
export function splitByDay(points: Point[]): Map<number, Point[]> {
  const out = new Map<number, Point[]>();
  for (const pt of points) {
    const d = dayStart(pt[0]);
    out.set(d, [...(out.get(d) ?? []), pt]);
  }
  return out;
}
