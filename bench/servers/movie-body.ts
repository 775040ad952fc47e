/**
 * A ~4 KB TMDB-like movie document per id, deterministic, built from a vocabulary so it
 * compresses about as real TMDB JSON does (≈ 3×), not like one repeated filler (≈ 50×).
 */
const SYLLABLES = ['ka', 'ren', 'to', 'mi', 'sha', 'lo', 'dre', 'vin', 'qu', 'el', 'ost', 'pha'];

/** Mulberry32: a small seeded PRNG, so every run and every server sees the same documents. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = seeded(7);
const VOCABULARY = Array.from({ length: 3000 }, () => {
  const n = 1 + Math.floor(random() * 4);
  let w = '';
  for (let i = 0; i < n; i++) w += SYLLABLES[Math.floor(random() * SYLLABLES.length)];
  return w;
});

export function movieBody(id: number): Buffer {
  const r = seeded(id);
  const words = (count: number) =>
    Array.from({ length: count }, () => VOCABULARY[Math.floor(r() * VOCABULARY.length)]).join(' ');
  const doc = {
    id,
    title: words(3),
    original_title: words(3),
    release_date: `19${50 + Math.floor(r() * 50)}-0${1 + Math.floor(r() * 9)}-1${Math.floor(r() * 9)}`,
    vote_average: Math.round(r() * 100) / 10,
    vote_count: Math.floor(r() * 30_000),
    popularity: r() * 100,
    genres: Array.from({ length: 3 }, () => ({ id: Math.floor(r() * 10_000), name: words(1) })),
    overview: words(160),
    production_companies: Array.from({ length: 4 }, () => ({
      id: Math.floor(r() * 100_000),
      name: words(2),
      logo_path: `/${Math.floor(r() * 1e12).toString(36)}.png`,
      origin_country: 'US',
    })),
    tagline: words(8),
    credits: Array.from({ length: 20 }, () => ({
      id: Math.floor(r() * 1_000_000),
      name: words(2),
      character: words(2),
      profile_path: `/${Math.floor(r() * 1e12).toString(36)}.jpg`,
    })),
  };
  return Buffer.from(JSON.stringify(doc));
}
