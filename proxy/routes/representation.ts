/**
 * How a cached body is represented to a client: a strong ETag per representation, and the
 * compressed forms (br, gzip) of compressible bodies, each made once per cached entry and kept
 * beside it for as long as the entry lives in L1. Images and small bodies are sent as stored.
 */
import { hash } from 'node:crypto';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import type { CacheEntry } from '../cache/entry.ts';

export type Encoding = 'br' | 'gzip';

interface Forms {
  tag: string;
  br?: Buffer;
  gzip?: Buffer;
}
const forms = new WeakMap<CacheEntry, Forms>();

function formsOf(entry: CacheEntry): Forms {
  let f = forms.get(entry);
  if (!f) {
    // A hash of the bytes: two replicas that stored the same answer give the same tag.
    f = { tag: hash('sha1', entry.body, 'base64url').slice(0, 22) };
    forms.set(entry, f);
  }
  return f;
}

/** The strong ETag of an entry in one encoding (each representation has its own). */
export function etagOf(entry: CacheEntry, encoding: Encoding | undefined): string {
  const { tag } = formsOf(entry);
  return encoding ? `"${tag}-${encoding === 'br' ? 'br' : 'gz'}"` : `"${tag}"`;
}

/** The body compressed with `encoding`, made on first use and kept with the entry. */
export function compressedBody(entry: CacheEntry, encoding: Encoding): Buffer {
  const f = formsOf(entry);
  if (encoding === 'br') {
    f.br ??= brotliCompressSync(entry.body, {
      params: {
        // Quality 5: most of br's gain over gzip at a small part of its top setting's cost.
        [constants.BROTLI_PARAM_QUALITY]: 5,
        [constants.BROTLI_PARAM_SIZE_HINT]: entry.body.length,
      },
    });
    return f.br;
  }
  f.gzip ??= gzipSync(entry.body, { level: 6 });
  return f.gzip;
}

/** The encoding to send for an Accept-Encoding header: br, else gzip, else none (q=0 refuses). */
export function pickEncoding(accept: string | undefined): Encoding | undefined {
  if (!accept) return undefined;
  let br = false;
  let gzip = false;
  for (const part of accept.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const refused = params.some((p) => /^\s*q\s*=\s*0(?:\.0*)?\s*$/.test(p));
    if (refused) continue;
    if (name === 'br') br = true;
    else if (name === 'gzip' || name === 'x-gzip') gzip = true;
    else if (name === '*') {
      br = true;
      gzip = true;
    }
  }
  return br ? 'br' : gzip ? 'gzip' : undefined;
}

/** Whether If-None-Match names this tag (or is `*`): weak comparison, as RFC 9110 says for it. */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === '*') return true;
  const opaque = etag.replace(/^W\//, '');
  return header.split(',').some((t) => t.trim().replace(/^W\//, '') === opaque);
}
