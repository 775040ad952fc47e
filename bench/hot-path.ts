/**
 * The pure pieces of a cache hit, timed in a loop without any I/O: building the request and
 * key from a URL, the L1 lookup, decoding an L2 value, and the response headers. A change to
 * the hit paths shows here in nanoseconds before it is lost in bench:proxy's noise. Then the
 * L2 bytes the value encoding saves on the demo upstream's movies.
 *
 *   npm run bench:hot-path   (BENCH_ITERATIONS=1000000)
 */

import { createLogger } from '../lib/log.ts';
import { decodeEntry, encodeEntry } from '../proxy/cache/entry.ts';
import { checkPath } from '../proxy/cache/keys.ts';
import { MemoryTier } from '../proxy/cache/l1.ts';
import { createProxyMetrics } from '../proxy/metrics.ts';
import { servedHeaders } from '../proxy/routes/send.ts';
import { demoMovie } from '../proxy/upstreams/demo-server.ts';
import { HttpUpstream } from '../proxy/upstreams/http.ts';
import { TmdbUpstream } from '../proxy/upstreams/tmdb.ts';
import { BODY_4K } from './servers/body.ts';

const iterations = Number(process.env.BENCH_ITERATIONS ?? 1_000_000);

function time(name: string, run: () => unknown): void {
  for (let i = 0; i < iterations / 10; i++) run(); // let V8 optimise it first
  const start = performance.now();
  for (let i = 0; i < iterations; i++) run();
  const ns = ((performance.now() - start) * 1e6) / iterations;
  console.log(`${name.padEnd(44)} ${ns.toFixed(0).padStart(6)} ns`);
}

const ttl = { memoryMs: 60_000, diskMs: 3_600_000 };
const log = createLogger('silent', {});
const tmdb = new TmdbUpstream({
  apiKey: 'bench',
  apiUrl: 'http://127.0.0.1:9',
  imageUrl: 'http://127.0.0.1:9',
  ttl: { json: ttl, image: ttl, search: ttl },
  http: new HttpUpstream({
    name: 'tmdb',
    timeoutMs: 1000,
    log,
    metrics: createProxyMetrics('bench'),
  }),
  requestsKept: 10_000,
});
const now = Date.now();
const entry = {
  status: 200,
  contentType: 'application/json;charset=utf-8',
  body: BODY_4K,
  storedAt: now,
  expiresAt: now + 3_600_000,
  staleUntil: now + 7_200_000,
};
const l1 = new MemoryTier({ maxBytes: 64 << 20, imageMaxBytes: 16 << 20 });
const key = tmdb.request('/3/movie/550').key;
l1.set(key, 'default', entry, ttl.memoryMs, now);
const stored = encodeEntry(entry);

console.log(`hot-path pieces, ${iterations} iterations each; node ${process.version}\n`);
time('request + key for /3/movie/550 (first seen)', () => tmdb.request(checkPath('/3/movie/550')));
time('request + key, 3-parameter query (first seen)', () =>
  tmdb.request(checkPath('/3/search/movie'), 'query=fight&page=2&language=en-US'),
);
time('request + key, 3-parameter query (seen before)', () =>
  tmdb.requestForUrl('/3/search/movie?query=fight&page=2&language=en-US'),
);
time('L1 get (hit)', () => l1.get(key, 'default', now));
time('L1 get (miss)', () => l1.get('tc:tmdb:/3/movie/551', 'default', now));
time('decode a 4 KB L2 value', () => decodeEntry(stored));
time('encode a 4 KB entry', () => encodeEntry(entry));
time('headers of an L2 hit', () => servedHeaders({ entry, source: 'L2', stored: true }, {}, now));
const movieEntry = (id: number) => ({ ...entry, body: Buffer.from(JSON.stringify(demoMovie(id))) });
const movie = movieEntry(550);
const storedMovie = encodeEntry(movie);
time(`decode a demo movie (${movie.body.length} B, deflated)`, () => decodeEntry(storedMovie));
time('encode a demo movie (deflating it)', () => encodeEntry(movie));

// What L2 holds for 1 000 demo movies, as is (the TC2 layout) and as encodeEntry stores them.
let asIs = 0;
let stored1000 = 0;
for (let id = 1; id <= 1000; id++) {
  const e = movieEntry(id);
  asIs += 32 + e.contentType.length + e.body.length;
  stored1000 += encodeEntry(e).length;
}
console.log(
  `\nL2 value bytes, 1 000 demo movies: ${asIs} as is, ${stored1000} stored (${(100 - (stored1000 / asIs) * 100).toFixed(0)} % saved)`,
);
