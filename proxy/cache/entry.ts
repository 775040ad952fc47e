/**
 * A cached upstream answer and its binary encoding for Redis. The body stays a Buffer end to
 * end so images round-trip byte for byte; the small JSON header carries status and timestamps.
 */

export interface CacheEntry {
  status: number;
  contentType: string;
  body: Buffer;
  /** ms since epoch when the upstream answered. */
  storedAt: number;
  /** ms since epoch until which the entry is fresh. */
  expiresAt: number;
  /** ms since epoch until which the entry may still be served stale. */
  staleUntil: number;
}

const MAGIC = Buffer.from('TC1\n');
const HEADER_AT = MAGIC.length + 4;

export function encodeEntry(entry: CacheEntry): Buffer {
  const header = Buffer.from(
    JSON.stringify({
      s: entry.status,
      t: entry.contentType,
      a: entry.storedAt,
      e: entry.expiresAt,
      x: entry.staleUntil,
    }),
  );
  const length = Buffer.allocUnsafe(4);
  length.writeUInt32BE(header.length);
  return Buffer.concat([MAGIC, length, header, entry.body]);
}

/** Decodes what encodeEntry wrote; anything else (old format, foreign key) gives undefined. */
export function decodeEntry(buf: Buffer): CacheEntry | undefined {
  if (buf.length < HEADER_AT || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return undefined;
  const headerLength = buf.readUInt32BE(MAGIC.length);
  if (HEADER_AT + headerLength > buf.length) return undefined;
  try {
    const h = JSON.parse(buf.subarray(HEADER_AT, HEADER_AT + headerLength).toString('utf8'));
    if (typeof h.s !== 'number' || typeof h.t !== 'string' || typeof h.a !== 'number')
      return undefined;
    return {
      status: h.s,
      contentType: h.t,
      storedAt: h.a,
      expiresAt: h.e,
      staleUntil: h.x,
      body: buf.subarray(HEADER_AT + headerLength),
    };
  } catch {
    return undefined;
  }
}

/** Bytes an entry costs in L1: body plus key plus a fixed allowance for the object itself. */
export function entryCost(key: string, entry: CacheEntry): number {
  return entry.body.length + key.length * 2 + 256;
}
