import { describe, expect, it } from 'vitest';
import type { CacheEntry } from '../../proxy/cache/entry.ts';
import { MemoryTier } from '../../proxy/cache/l1.ts';

const entry = (bytes: number, now = 0): CacheEntry => ({
  status: 200,
  contentType: 'application/json',
  body: Buffer.alloc(bytes),
  storedAt: now,
  expiresAt: now + 60_000,
  staleUntil: now + 120_000,
});

describe('L1 memory tier', () => {
  it('stays within its byte budget, evicting the least recently used', () => {
    const l1 = new MemoryTier({ maxBytes: 100_000, imageMaxBytes: 0 });
    for (let i = 0; i < 50; i++) l1.set(`k${i}`, 'default', entry(10_000), 60_000, 0);
    const stats = l1.stats();
    expect(stats.bytes).toBeLessThanOrEqual(100_000);
    expect(stats.entries).toBeLessThan(10);
    expect(l1.get('k49', 'default', 0)).toBeDefined();
    expect(l1.get('k0', 'default', 0)).toBeUndefined();
  });

  it('keeps images in their own budget so they cannot push JSON out', () => {
    const l1 = new MemoryTier({ maxBytes: 50_000, imageMaxBytes: 50_000 });
    l1.set('json', 'default', entry(1_000), 60_000, 0);
    for (let i = 0; i < 100; i++) l1.set(`img${i}`, 'image', entry(10_000), 60_000, 0);
    expect(l1.get('json', 'default', 0)).toBeDefined();
    expect(l1.stats().imageBytes).toBeLessThanOrEqual(50_000);
  });

  it('refuses entries larger than a quarter of the budget, and keeps nothing with a 0 budget', () => {
    const l1 = new MemoryTier({ maxBytes: 40_000, imageMaxBytes: 0 });
    l1.set('big', 'default', entry(20_000), 60_000, 0);
    expect(l1.get('big', 'default', 0)).toBeUndefined();
    l1.set('img', 'image', entry(10), 60_000, 0);
    expect(l1.get('img', 'image', 0)).toBeUndefined();
  });

  it('drops an entry once its stale window has ended', () => {
    const l1 = new MemoryTier({ maxBytes: 100_000, imageMaxBytes: 0 });
    l1.set('a', 'default', entry(10, 0), 60_000, 0);
    expect(l1.get('a', 'default', 119_999)).toBeDefined();
    expect(l1.get('a', 'default', 120_000)).toBeUndefined();
    expect(l1.stats().entries).toBe(0);
  });

  it('answers on its own only for the memory TTL, never past the entry expiry', () => {
    const l1 = new MemoryTier({ maxBytes: 100_000, imageMaxBytes: 0 });
    l1.set('a', 'default', entry(10, 0), 5_000, 0);
    expect(l1.get('a', 'default', 0)?.freshUntil).toBe(5_000);
    l1.set('b', 'default', entry(10, 0), 600_000, 0);
    expect(l1.get('b', 'default', 0)?.freshUntil).toBe(60_000);
  });
});
