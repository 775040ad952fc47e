/**
 * Chart series in chunks (pure): a day for hourly and daily points, an hour for 5-minute ones.
 * A past chunk never changes, so it is cached for long; only the current chunk — the open
 * candle — is short-lived. A request names the chunks its range
 * covers; whatever chunks are missing are fetched with one upstream call and split again.
 */

export type Point = [number, number]; // [ms, price]

const HOUR = 3_600_000;
const DAY = 86_400_000;

/** Step between points per interval. */
export const INTERVALS = { '5m': 300_000, hourly: HOUR, daily: DAY } as const;
export type Interval = keyof typeof INTERVALS;

/** Chunk size per interval: an hour of 5-minute points, a day of hourly or daily ones. */
export const CHUNK_MS: Record<Interval, number> = { '5m': HOUR, hourly: DAY, daily: DAY };

/**
 * Longest range per interval. CoinGecko answers 5-minute points for the last day only, hourly
 * points up to 90 days back and daily beyond; a range of N days touches N + 1 day chunks, so
 * hourly ranges stop at 89 days.
 */
export const MAX_DAYS: Record<Interval, number> = { '5m': 1, hourly: 89, daily: 365 };

/**
 * How far back the upstream still answers at the interval's granularity: a fetch never starts
 * earlier, so a 5-minute fetch may fill its oldest hour only from 24 hours ago onwards — the
 * part no later request needs. (CoinGecko also gives 5-minute points only for a span that
 * ends now: see fetchSpan.)
 */
export const UPSTREAM_WINDOW_MS: Record<Interval, number> = {
  '5m': DAY,
  hourly: 90 * DAY,
  daily: Number.POSITIVE_INFINITY,
};

/**
 * How long after it closed a chunk is still treated as open: the upstream's last points of a
 * day arrive late and get revised for a while, so a day that just closed keeps the open
 * candle's short TTL for its first hour (an hour chunk of 5-minute points for one step).
 */
export const SETTLE_MS: Record<Interval, number> = { '5m': 300_000, hourly: HOUR, daily: HOUR };

/** Whether a chunk may still change: the open one, or one closed less than SETTLE_MS ago. */
export function isUnsettled(start: number, interval: Interval, now: number): boolean {
  return now < start + CHUNK_MS[interval] + SETTLE_MS[interval];
}

export function chunkStart(ms: number, interval: Interval): number {
  const size = CHUNK_MS[interval];
  return Math.floor(ms / size) * size;
}

/** A chunk's name in its cache key: the UTC day (2026-11-23), or day and hour (2026-11-23T14). */
export function chunkLabel(ms: number, interval: Interval): string {
  const iso = new Date(chunkStart(ms, interval)).toISOString();
  return CHUNK_MS[interval] === DAY ? iso.slice(0, 10) : iso.slice(0, 13);
}

/** The chunks (their start times, oldest first) covering the last `days` days up to now. */
export function chunksFor(interval: Interval, days: number, now: number): number[] {
  const size = CHUNK_MS[interval];
  const first = chunkStart(now - days * DAY, interval);
  const last = chunkStart(now, interval);
  return Array.from({ length: (last - first) / size + 1 }, (_, i) => first + i * size);
}

/**
 * The span to fetch for the missing chunks: from the oldest (or as far back as the upstream
 * answers at this granularity) to the end of the newest, or now. 5-minute spans always run to
 * now: CoinGecko answers a past span, however short, with hourly points.
 */
export function fetchSpan(
  missing: number[],
  interval: Interval,
  now: number,
): { from: number; to: number } {
  const from = Math.max(Math.min(...missing), now - UPSTREAM_WINDOW_MS[interval]);
  const to = interval === '5m' ? now : Math.min(Math.max(...missing) + CHUNK_MS[interval], now);
  return { from, to };
}

/** One point per interval step: the last price seen in each step (the candle's close). */
export function resample(points: Point[], interval: Interval): Point[] {
  const step = INTERVALS[interval];
  const byStep = new Map<number, Point>();
  for (const [t, p] of points)
    byStep.set(Math.floor(t / step) * step, [Math.floor(t / step) * step, p]);
  return [...byStep.values()].sort((a, b) => a[0] - b[0]);
}

/** Splits points into chunks keyed by the chunk's start. */
export function splitByChunk(points: Point[], interval: Interval): Map<number, Point[]> {
  const out = new Map<number, Point[]>();
  for (const pt of points) {
    const c = chunkStart(pt[0], interval);
    const chunk = out.get(c);
    if (chunk) chunk.push(pt);
    else out.set(c, [pt]);
  }
  return out;
}
