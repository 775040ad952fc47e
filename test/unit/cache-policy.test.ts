import { describe, expect, it } from 'vitest';
import {
  ageSeconds,
  freshness,
  lifetimeMs,
  ttlForStatus,
  ttlSeconds,
} from '../../proxy/cache/policy.ts';

const ttl = { memoryMs: 60_000, diskMs: 600_000 };

describe('cache policy', () => {
  it('stores successful answers with the class TTLs', () => {
    expect(ttlForStatus(200, ttl, 30_000)).toEqual(ttl);
  });

  it('stores 404 briefly, never longer than the class TTL', () => {
    expect(ttlForStatus(404, ttl, 30_000)).toEqual({ memoryMs: 30_000, diskMs: 30_000 });
    expect(ttlForStatus(404, { memoryMs: 10_000, diskMs: 0 }, 30_000)).toEqual({
      memoryMs: 10_000,
      diskMs: 0,
    });
  });

  it.each([401, 403, 429, 500, 502, 503, 504, 400])('never stores status %i', (status) => {
    expect(ttlForStatus(status, ttl, 30_000)).toBeUndefined();
  });

  it('stores nothing when both tiers are off for the class', () => {
    expect(ttlForStatus(200, { memoryMs: 0, diskMs: 0 }, 30_000)).toBeUndefined();
  });

  it('lets the longest tier in use decide the lifetime', () => {
    expect(lifetimeMs(ttl, true)).toBe(600_000);
    expect(lifetimeMs(ttl, false)).toBe(60_000);
    expect(lifetimeMs({ memoryMs: 60_000, diskMs: 0 }, true)).toBe(60_000);
  });

  it('tells fresh, stale and dead apart', () => {
    expect(freshness(100, 200, 50)).toBe('fresh');
    expect(freshness(100, 200, 150)).toBe('stale');
    expect(freshness(100, 200, 200)).toBe('dead');
  });

  it('computes Age and a negative ttl once stale', () => {
    expect(ageSeconds(1_000, 3_500)).toBe(2);
    expect(ttlSeconds(1_000, 3_500)).toBe(-3);
  });
});
