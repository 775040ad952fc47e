import { describe, expect, it } from 'vitest';
import { TiercacheError } from '../../lib/errors.ts';
import { decodeCursor, encodeCursor, listKeys } from '../../proxy/cache/key-listing.ts';
import { MemoryTier } from '../../proxy/cache/l1.ts';

const entry = (now: number) => ({
  status: 200,
  contentType: 'application/json',
  body: Buffer.from('{}'),
  storedAt: now,
  expiresAt: now + 60_000,
  staleUntil: now + 120_000,
});

describe('key listing cursors', () => {
  it('hands back the position it was given', () => {
    for (const c of [
      { tier: 'l1', after: 'tc:tmdb:/3/movie/1' },
      { tier: 'l2', at: { node: 2, cursor: '18446744073709551615', skip: 7 } },
    ] as const)
      expect(decodeCursor(encodeCursor(c))).toEqual(c);
  });

  it('refuses anything it did not hand out, with BAD_REQUEST', () => {
    const forged = [
      'not-a-cursor',
      Buffer.from('{"tier":"l2"}').toString('base64url'),
      Buffer.from('{"tier":"l2","at":{"node":-1,"cursor":"0","skip":0}}').toString('base64url'),
      Buffer.from('{"tier":"l2","at":{"node":0,"cursor":"0 MATCH *","skip":0}}').toString(
        'base64url',
      ),
      Buffer.from('null').toString('base64url'),
    ];
    for (const text of forged) {
      const err = (() => {
        try {
          decodeCursor(text);
        } catch (e) {
          return e;
        }
      })();
      expect(err, text).toBeInstanceOf(TiercacheError);
      expect((err as TiercacheError).code).toBe('BAD_REQUEST');
    }
  });

  it('pages L1 in key order, so use between pages moves nothing', async () => {
    const l1 = new MemoryTier({ maxBytes: 1 << 20, imageMaxBytes: 0 });
    const now = Date.now();
    for (const id of [5, 3, 1, 4, 2])
      l1.set(`tc:tmdb:/3/movie/${id}`, 'default', entry(now), 60_000, now);
    const first = await listKeys(l1, undefined, { limit: 2 });
    expect(first.rows.map((r) => r.key)).toEqual(['tmdb:/3/movie/1', 'tmdb:/3/movie/2']);
    l1.get('tc:tmdb:/3/movie/1', 'default', now); // recency changes; the walk does not
    const second = await listKeys(l1, undefined, { limit: 2, cursor: first.next });
    expect(second.rows.map((r) => r.key)).toEqual(['tmdb:/3/movie/3', 'tmdb:/3/movie/4']);
    const last = await listKeys(l1, undefined, { limit: 2, cursor: second.next });
    expect(last.rows.map((r) => r.key)).toEqual(['tmdb:/3/movie/5']);
    expect(last.next).toBeUndefined();
  });
});
