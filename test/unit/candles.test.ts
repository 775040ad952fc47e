import { describe, expect, it } from 'vitest';
import {
  chunkLabel,
  chunksFor,
  fetchSpan,
  isUnsettled,
  resample,
  splitByChunk,
} from '../../proxy/crypto/candles.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const NOW = Date.UTC(2026, 10, 23, 14, 37); // 2026-11-23 14:37 UTC

describe('chart chunks', () => {
  it('covers N days with N + 1 day chunks for hourly and daily points', () => {
    const chunks = chunksFor('hourly', 3, NOW);
    expect(chunks).toHaveLength(4);
    expect(chunks[3]).toBe(Date.UTC(2026, 10, 23));
    expect(chunks[0]).toBe(Date.UTC(2026, 10, 20));
    expect(chunkLabel(chunks[0]!, 'hourly')).toBe('2026-11-20');
  });

  it('covers the last day with 25 hour chunks for 5-minute points', () => {
    const chunks = chunksFor('5m', 1, NOW);
    expect(chunks).toHaveLength(25);
    expect(chunks[0]).toBe(Date.UTC(2026, 10, 22, 14));
    expect(chunks.at(-1)).toBe(Date.UTC(2026, 10, 23, 14));
    expect(new Set(chunks.slice(1).map((c, i) => c - chunks[i]!))).toEqual(new Set([HOUR]));
    expect(chunkLabel(chunks[0]!, '5m')).toBe('2026-11-22T14');
  });

  it('resamples to the last price per step and splits by chunk', () => {
    const t0 = Date.UTC(2026, 10, 23, 13, 50);
    const points: [number, number][] = [
      [t0 + 60_000, 1],
      [t0 + 240_000, 2], // same 5-minute step: the later price closes it
      [t0 + 600_000, 3], // 14:00, the next hour's chunk
    ];
    const five = resample(points, '5m');
    expect(five).toEqual([
      [t0, 2],
      [t0 + 600_000, 3],
    ]);
    const chunks = splitByChunk(five, '5m');
    expect([...chunks.keys()]).toEqual([Date.UTC(2026, 10, 23, 13), Date.UTC(2026, 10, 23, 14)]);
    expect(splitByChunk(five, 'daily').get(Date.UTC(2026, 10, 23))).toHaveLength(2);
    expect(DAY).toBe(86_400_000);
  });
});

describe('settling and fetch spans', () => {
  const DAY = 86_400_000;
  const MIDNIGHT = Date.UTC(2026, 10, 23);

  it('keeps a day that closed less than an hour ago unsettled', () => {
    const yesterday = MIDNIGHT - DAY;
    expect(isUnsettled(yesterday, 'daily', MIDNIGHT + 10 * 60_000)).toBe(true);
    expect(isUnsettled(yesterday, 'hourly', MIDNIGHT + 59 * 60_000)).toBe(true);
    expect(isUnsettled(yesterday, 'daily', MIDNIGHT + 61 * 60_000)).toBe(false);
    expect(isUnsettled(MIDNIGHT, 'daily', MIDNIGHT + 5 * 3_600_000)).toBe(true); // open
    expect(isUnsettled(MIDNIGHT - 3_600_000, '5m', MIDNIGHT + 4 * 60_000)).toBe(true);
    expect(isUnsettled(MIDNIGHT - 3_600_000, '5m', MIDNIGHT + 6 * 60_000)).toBe(false);
  });

  it('runs 5-minute spans to now and other spans to the end of the newest missing chunk', () => {
    const now = MIDNIGHT + 12 * 3_600_000;
    const hour = MIDNIGHT + 3 * 3_600_000;
    expect(fetchSpan([hour], '5m', now)).toEqual({ from: hour, to: now });
    expect(fetchSpan([MIDNIGHT - 5 * DAY, MIDNIGHT - 3 * DAY], 'hourly', now)).toEqual({
      from: MIDNIGHT - 5 * DAY,
      to: MIDNIGHT - 2 * DAY,
    });
    // Never further back than the upstream answers at the granularity.
    expect(fetchSpan([MIDNIGHT - 2 * DAY], '5m', now).from).toBe(now - DAY);
  });
});
