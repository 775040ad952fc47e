import { describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/log.ts';
import { MemoryTier } from '../../proxy/cache/l1.ts';
import { TieredCache } from '../../proxy/cache/tiered.ts';
import { createProxyMetrics } from '../../proxy/metrics.ts';
import { servedHeaders } from '../../proxy/routes/send.ts';

const MINUTE = 60_000;

function cache(): TieredCache {
  return new TieredCache({
    l1: new MemoryTier({ maxBytes: 1 << 20, imageMaxBytes: 1 << 20 }),
    l2: undefined,
    staleMs: 5 * MINUTE,
    notFoundMs: MINUTE,
    leaseMs: 5000,
    upstreamTimeoutMs: 10_000,
    l2MaxEntryBytes: 1 << 20,
    metrics: createProxyMetrics('test'),
    log: createLogger('silent'),
  });
}

const slot = { key: 'tc:tmdb:/3/movie/1', cls: 'json', ttl: { memoryMs: 15 * MINUTE, diskMs: 0 } };
const answer = { status: 200, contentType: 'application/json', body: Buffer.from('{}') };

describe("a shield's copy (SHIELD_URL)", () => {
  it('keeps the age the shield gave it: it expires here when it would there, and says how old it is', () => {
    const now = Date.now();
    const fromShield = cache().keep(slot, { ...answer, ageMs: 10 * MINUTE, viaShield: true });
    const { entry } = fromShield.served;
    expect(entry.storedAt).toBeLessThanOrEqual(now - 10 * MINUTE + 1000);
    expect(entry.expiresAt - entry.storedAt).toBe(15 * MINUTE);
    const headers = servedHeaders(fromShield.served, {}, Date.now());
    expect(Number(headers.age)).toBeGreaterThanOrEqual(600);
    expect(headers['cache-control']).toMatch(/max-age=(29\d|300)$/);
    expect(headers['cache-status']).toMatch(
      /fwd=uri-miss; fwd-status=200; stored; ttl=\d+; detail=shield$/,
    );

    // The origin's answer is new: it is fresh for the class's whole TTL.
    const fromOrigin = cache().keep(slot, answer).served;
    expect(fromOrigin.entry.expiresAt - fromOrigin.entry.storedAt).toBe(15 * MINUTE);
    expect(Number(servedHeaders(fromOrigin, {}, Date.now()).age)).toBe(0);
    expect(servedHeaders(fromOrigin, {}, Date.now())['cache-status']).not.toMatch(/shield/);
  });
});
