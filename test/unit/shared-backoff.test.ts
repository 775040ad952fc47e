import { describe, expect, it } from 'vitest';
import { SharedBackoffCopy } from '../../proxy/upstreams/shared-backoff.ts';

/** A stand-in for Redis's deadlines that counts its reads (the copy's whole point). */
function store(initial: Record<string, number> = {}) {
  const values = { ...initial };
  let reads = 0;
  return {
    values,
    reads: () => reads,
    until: async (u: string) => {
      reads += 1;
      return values[u] ?? 0;
    },
    hold: async (u: string, t: number) => {
      values[u] = t;
    },
  };
}

describe('SharedBackoffCopy', () => {
  it('waits for the first read only, then answers from its copy and refreshes it about once a second', async () => {
    let now = 10_000;
    const redis = store({ tmdb: 15_000 });
    const copy = new SharedBackoffCopy(redis, () => now);
    expect(await copy.until('tmdb')).toBe(15_000);
    expect(redis.reads()).toBe(1);
    redis.values.tmdb = 20_000; // another replica saw a 429
    now += 500;
    expect(await copy.until('tmdb')).toBe(15_000); // the copy, no round trip
    expect(redis.reads()).toBe(1);
    now += 600;
    expect(await copy.until('tmdb')).toBe(15_000); // still the copy; a refresh is sent behind it
    expect(redis.reads()).toBe(2);
    await Promise.resolve();
    expect(await copy.until('tmdb')).toBe(20_000);
  });

  it('has its own deadline at once, and keeps it over an older value read back', async () => {
    let now = 1_000;
    const redis = store();
    const copy = new SharedBackoffCopy(redis, () => now);
    expect(await copy.until('crypto@api')).toBe(0);
    await copy.hold('crypto@api', 31_000);
    expect(await copy.until('crypto@api')).toBe(31_000);
    expect(redis.values['crypto@api']).toBe(31_000);
    redis.values['crypto@api'] = 0; // Redis lost it (a failover)
    now += 1_500;
    await copy.until('crypto@api');
    await Promise.resolve();
    expect(await copy.until('crypto@api')).toBe(31_000);
  });

  it('keeps the last value while Redis cannot answer', async () => {
    let now = 0;
    let down = false;
    const copy = new SharedBackoffCopy(
      {
        until: async () => {
          if (down) throw new Error('L2 unavailable');
          return 5_000;
        },
        hold: async () => undefined,
      },
      () => now,
    );
    expect(await copy.until('tmdb')).toBe(5_000);
    down = true;
    now += 2_000;
    expect(await copy.until('tmdb')).toBe(5_000);
    await Promise.resolve();
    expect(await copy.until('tmdb')).toBe(5_000);
  });
});
