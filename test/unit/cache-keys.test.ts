import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { TiercacheError } from '../../lib/errors.ts';
import { decodeEntry, encodeEntry } from '../../proxy/cache/entry.ts';
import {
  cacheKey,
  canonicalQuery,
  checkPath,
  displayKey,
  globEscape,
  redactUrl,
} from '../../proxy/cache/keys.ts';
import type { HttpUpstream } from '../../proxy/upstreams/http.ts';
import { isPrivateTmdbUrl, TmdbUpstream } from '../../proxy/upstreams/tmdb.ts';

/** The key of a TMDB request for a client query, as the proxy builds it. */
const keyFor = (path: string, query: URLSearchParams) =>
  cacheKey('tmdb', path, canonicalQuery(query));

describe('cache keys', () => {
  it('sorts the query so equivalent requests share one key', () => {
    const a = keyFor('/3/movie/550', new URLSearchParams('language=en&append_to_response=videos'));
    const b = keyFor('/3/movie/550', new URLSearchParams('append_to_response=videos&language=en'));
    expect(a).toBe(b);
    expect(displayKey(a)).toBe('tmdb:/3/movie/550?append_to_response=videos&language=en');
  });

  it('orders repeated names by value, and keeps a query that is canonical already', () => {
    const key = (q: string) => keyFor('/3/discover/movie', new URLSearchParams(q));
    expect(key('with_genres=2&with_genres=1')).toBe(key('with_genres=1&with_genres=2'));
    expect(key('a=1&b=2')).toBe('tc:tmdb:/3/discover/movie?a=1&b=2');
    expect(key('q=fight%20club')).toBe('tc:tmdb:/3/discover/movie?q=fight+club');
  });

  it('builds one request per client URL, and still refuses a bad path every time', () => {
    const ttl = { memoryMs: 1, diskMs: 1 };
    const tmdb = new TmdbUpstream({
      apiKey: undefined,
      apiUrl: 'http://127.0.0.1:9',
      imageUrl: 'http://127.0.0.1:9',
      ttl: { json: ttl, image: ttl, search: ttl },
      http: undefined as unknown as HttpUpstream, // never fetched here
      requestsKept: 10,
    });
    const a = tmdb.requestForUrl('/3/search/movie?query=x&page=2&api_key=SECRET');
    expect(a.key).toBe('tc:tmdb:/3/search/movie?page=2&query=x');
    expect(a.cls).toBe('search');
    expect(tmdb.requestForUrl('/3/search/movie?page=2&query=x').key).toBe(a.key);
    for (let i = 0; i < 2; i++)
      expect(() => tmdb.requestForUrl('/3/../etc')).toThrow(TiercacheError);
  });

  it('drops credentials a client sends', () => {
    const key = keyFor('/3/movie/1', new URLSearchParams('api_key=SECRET&Access_Token=T&page=2'));
    expect(key).not.toMatch(/SECRET|T&|access_token/i);
    expect(key).toBe('tc:tmdb:/3/movie/1?page=2');
  });

  it('bounds very long keys with a digest', () => {
    const key = keyFor(`/3/search/movie`, new URLSearchParams({ query: 'x'.repeat(5000) }));
    expect(key.length).toBeLessThanOrEqual(1024);
    expect(key).toMatch(/#[0-9a-f]{64}$/);
  });

  it.each(['/3/../etc', '/3/%2e%2e/x', '/3/a%2fb', '/3//movie', '/3/%zz', '/3/a\u0001'])(
    'rejects the path %s with a 400',
    (path) => {
      try {
        checkPath(path);
        expect.unreachable();
      } catch (err) {
        expect(err).toBeInstanceOf(TiercacheError);
        expect((err as TiercacheError).httpStatus).toBe(400);
      }
    },
  );

  it('accepts ordinary TMDB paths', () => {
    expect(checkPath('/3/movie/550/credits')).toBe('/3/movie/550/credits');
    expect(checkPath('/t/p/w500/abc.jpg')).toBe('/t/p/w500/abc.jpg');
  });

  it('escapes glob characters for SCAN MATCH and redacts credentials in URLs', () => {
    expect(globEscape('a*b?[c]')).toBe('a\\*b\\?\\[c\\]');
    expect(redactUrl('/3/movie/1?api_key=SECRET&x=1')).toBe(
      '/3/movie/1?api_key=%5Bredacted%5D&x=1',
    );
    expect(redactUrl('/3/account/1?Session_ID=S&guest_session_id=G')).toBe(
      '/3/account/1?Session_ID=%5Bredacted%5D&guest_session_id=%5Bredacted%5D',
    );
  });

  it('tells a TMDB user’s own requests (never cached) from shared ones', () => {
    for (const url of [
      '/3/authentication/token/new',
      '/3/authentication',
      '/3/account',
      '/3/account/42/favorite/movies?page=2',
      '/3/movie/550?session_id=abc',
      '/3/movie/550?language=en&GUEST_SESSION_ID=abc',
      '/3/movie/550/account_states?request_token=abc',
    ])
      expect(isPrivateTmdbUrl(url), url).toBe(true);
    for (const url of [
      '/3/movie/550',
      '/3/accountant',
      '/3/search/movie?query=session_id',
      '/3/movie/550?my_session_id=1',
    ])
      expect(isPrivateTmdbUrl(url), url).toBe(false);
  });
});

describe('entry encoding', () => {
  it('round-trips binary bodies byte for byte', () => {
    const body = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));
    const entry = {
      status: 200,
      contentType: 'image/jpeg',
      body,
      storedAt: 1,
      expiresAt: 2,
      staleUntil: 3,
    };
    const back = decodeEntry(encodeEntry(entry));
    expect(back).toEqual(entry);
    expect(back!.body.equals(body)).toBe(true);
  });

  it('gives each entry its own content type when types alternate', () => {
    const of = (contentType: string) =>
      encodeEntry({
        status: 200,
        contentType,
        body: Buffer.from('x'),
        storedAt: 1,
        expiresAt: 2,
        staleUntil: 3,
      });
    const types = ['application/json', 'image/jpeg', 'application/json', 'application/jsoN', 'x'];
    expect(types.map((t) => decodeEntry(of(t))!.contentType)).toEqual(types);
  });

  it('rejects foreign or truncated values', () => {
    expect(decodeEntry(Buffer.from('hello world'))).toBeUndefined();
    const enc = encodeEntry({
      status: 200,
      contentType: 'x',
      body: Buffer.alloc(0),
      storedAt: 1,
      expiresAt: 2,
      staleUntil: 3,
    });
    expect(decodeEntry(enc.subarray(0, 12))).toBeUndefined();
    // A content-type length pointing past the end of the value.
    const bad = Buffer.from(enc);
    bad.writeUInt16BE(500, 31);
    expect(decodeEntry(bad)).toBeUndefined();
  });

  it('stores a JSON body deflated when that pays, and gives it back as it was', () => {
    const body = Buffer.from(
      JSON.stringify({
        results: Array.from({ length: 40 }, (_, i) => ({ id: i, title: `Movie ${i}`, vote: 7.1 })),
      }),
    );
    const entry = {
      status: 200,
      contentType: 'application/json; charset=utf-8',
      body,
      storedAt: 1,
      expiresAt: 2,
      staleUntil: 3,
    };
    const stored = encodeEntry(entry);
    expect(stored.length).toBeLessThan(body.length / 2);
    expect(decodeEntry(stored)).toEqual(entry);
  });

  it('leaves images, small bodies and bodies that do not shrink as they are', () => {
    const random = randomBytes(4096); // text that does not compress
    for (const [contentType, body] of [
      ['image/png', Buffer.alloc(4096, 1)],
      ['application/json', Buffer.from('{"id":1}')],
      ['text/plain', random],
    ] as const) {
      const stored = encodeEntry({
        status: 200,
        contentType,
        body,
        storedAt: 1,
        expiresAt: 2,
        staleUntil: 3,
      });
      expect(stored.length, contentType).toBe(33 + contentType.length + body.length);
    }
  });

  it('refuses a value with an unknown codec or a damaged deflated body', () => {
    const body = Buffer.from(JSON.stringify({ overview: 'word '.repeat(400) }));
    const stored = encodeEntry({
      status: 200,
      contentType: 'application/json',
      body,
      storedAt: 1,
      expiresAt: 2,
      staleUntil: 3,
    });
    const unknown = Buffer.from(stored);
    unknown.writeUInt8(9, 30);
    expect(decodeEntry(unknown)).toBeUndefined();
    const damaged = Buffer.from(stored);
    damaged.fill(0xff, 60, 80);
    expect(decodeEntry(damaged)).toBeUndefined();
  });

  it('still reads entries in the TC2 format (no codec byte) older proxies wrote', () => {
    const type = Buffer.from('application/json');
    const body = Buffer.from('{"id":550}');
    const v2 = Buffer.alloc(4 + 2 + 24 + 2 + type.length + body.length);
    v2.write('TC2\n', 0);
    v2.writeUInt16BE(200, 4);
    v2.writeDoubleBE(10, 6);
    v2.writeDoubleBE(20, 14);
    v2.writeDoubleBE(30, 22);
    v2.writeUInt16BE(type.length, 30);
    type.copy(v2, 32);
    body.copy(v2, 32 + type.length);
    expect(decodeEntry(v2)).toEqual({
      status: 200,
      contentType: 'application/json',
      storedAt: 10,
      expiresAt: 20,
      staleUntil: 30,
      body,
    });
  });

  it('still reads entries in the TC1 format older proxies wrote (rolling upgrades keep L2)', () => {
    const header = Buffer.from(
      JSON.stringify({ s: 404, t: 'application/json', a: 10, e: 20, x: 30 }),
    );
    const length = Buffer.alloc(4);
    length.writeUInt32BE(header.length);
    const body = Buffer.from('{"status_code":34}');
    const v1 = Buffer.concat([Buffer.from('TC1\n'), length, header, body]);
    expect(decodeEntry(v1)).toEqual({
      status: 404,
      contentType: 'application/json',
      storedAt: 10,
      expiresAt: 20,
      staleUntil: 30,
      body,
    });
  });
});
