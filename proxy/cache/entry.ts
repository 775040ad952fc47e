/**
 * A cached upstream answer and its binary encoding for Redis. The body stays a Buffer end to
 * end so images round-trip byte for byte; a small fixed header carries status and timestamps.
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
  /** A redirect's Location: only on answers passed through, never stored (not encoded). */
  location?: string | undefined;
}

/**
 * Layout of a value: `TC2\n`, status (u16), storedAt, expiresAt, staleUntil (f64 each),
 * content-type length (u16) and bytes, then the body. Fixed offsets rather than JSON: decoding
 * runs on every L2 hit, and reading three doubles costs a fraction of a JSON.parse.
 */
const MAGIC = Buffer.from('TC2\n');
const STATUS_AT = MAGIC.length;
const STORED_AT = STATUS_AT + 2;
const EXPIRES_AT = STORED_AT + 8;
const STALE_AT = EXPIRES_AT + 8;
const TYPE_LENGTH_AT = STALE_AT + 8;
const TYPE_AT = TYPE_LENGTH_AT + 2;

/** The JSON-headed format proxies before TC2 wrote; still read, so a rolling upgrade keeps L2. */
const MAGIC_V1 = Buffer.from('TC1\n');

export function encodeEntry(entry: CacheEntry): Buffer {
  const type = Buffer.from(entry.contentType, 'utf8');
  const out = Buffer.allocUnsafe(TYPE_AT + type.length + entry.body.length);
  MAGIC.copy(out, 0);
  out.writeUInt16BE(entry.status, STATUS_AT);
  out.writeDoubleBE(entry.storedAt, STORED_AT);
  out.writeDoubleBE(entry.expiresAt, EXPIRES_AT);
  out.writeDoubleBE(entry.staleUntil, STALE_AT);
  out.writeUInt16BE(type.length, TYPE_LENGTH_AT);
  type.copy(out, TYPE_AT);
  entry.body.copy(out, TYPE_AT + type.length);
  return out;
}

function hasMagic(buf: Buffer, magic: Buffer): boolean {
  // Byte by byte: Buffer#compare with offsets costs more than the rest of a decode.
  for (let i = 0; i < magic.length; i++) if (buf[i] !== magic[i]) return false;
  return true;
}

/** The last content type decoded: nearly every L2 hit repeats it, so its string is reused. */
let lastType = { bytes: Buffer.alloc(0), text: '' };

function contentTypeAt(buf: Buffer, start: number, end: number): string {
  const known = lastType.bytes;
  if (known.length === end - start) {
    let i = 0;
    while (i < known.length && known[i] === buf[start + i]) i++;
    if (i === known.length) return lastType.text;
  }
  lastType = {
    bytes: Buffer.from(buf.subarray(start, end)),
    text: buf.toString('utf8', start, end),
  };
  return lastType.text;
}

/** Decodes what encodeEntry wrote (or the older TC1 format); anything else gives undefined. */
export function decodeEntry(buf: Buffer): CacheEntry | undefined {
  if (buf.length >= TYPE_AT && hasMagic(buf, MAGIC)) {
    const bodyAt = TYPE_AT + buf.readUInt16BE(TYPE_LENGTH_AT);
    if (bodyAt > buf.length) return undefined;
    return {
      status: buf.readUInt16BE(STATUS_AT),
      contentType: contentTypeAt(buf, TYPE_AT, bodyAt),
      storedAt: buf.readDoubleBE(STORED_AT),
      expiresAt: buf.readDoubleBE(EXPIRES_AT),
      staleUntil: buf.readDoubleBE(STALE_AT),
      body: buf.subarray(bodyAt),
    };
  }
  return decodeV1(buf);
}

function decodeV1(buf: Buffer): CacheEntry | undefined {
  const headerAt = MAGIC_V1.length + 4;
  if (buf.length < headerAt || !hasMagic(buf, MAGIC_V1)) return undefined;
  const headerLength = buf.readUInt32BE(MAGIC_V1.length);
  if (headerAt + headerLength > buf.length) return undefined;
  try {
    const h = JSON.parse(buf.toString('utf8', headerAt, headerAt + headerLength));
    if (typeof h.s !== 'number' || typeof h.t !== 'string' || typeof h.a !== 'number')
      return undefined;
    return {
      status: h.s,
      contentType: h.t,
      storedAt: h.a,
      expiresAt: h.e,
      staleUntil: h.x,
      body: buf.subarray(headerAt + headerLength),
    };
  } catch {
    return undefined;
  }
}

/** Bytes an entry costs in L1: body plus key plus a fixed allowance for the object itself. */
export function entryCost(key: string, entry: CacheEntry): number {
  return entry.body.length + key.length * 2 + 256;
}
