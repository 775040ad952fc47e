/**
 * A cached upstream answer and its binary encoding for Redis. The body stays a Buffer end to
 * end so images round-trip byte for byte; a small fixed header carries status and timestamps.
 * JSON and text bodies are stored deflated when that saves a fifth or more (Redis memory is
 * what a shared cache runs out of first); images and small bodies are stored as they are.
 */
import { deflateRawSync, inflateRawSync } from 'node:zlib';

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
 * Layout of a value: `TC3\n`, status (u16), storedAt, expiresAt, staleUntil (f64 each), the
 * body's codec (u8: 0 as is, 1 raw deflate), content-type length (u16) and bytes, then the
 * body. Fixed offsets rather than JSON: decoding runs on every L2 hit, and reading three
 * doubles costs a fraction of a JSON.parse. TC2 is TC3 without the codec byte.
 */
const MAGIC = Buffer.from('TC3\n');
const STATUS_AT = MAGIC.length;
const STORED_AT = STATUS_AT + 2;
const EXPIRES_AT = STORED_AT + 8;
const STALE_AT = EXPIRES_AT + 8;
const CODEC_AT = STALE_AT + 8;
const TYPE_LENGTH_AT = CODEC_AT + 1;
const TYPE_AT = TYPE_LENGTH_AT + 2;

const CODEC_NONE = 0;
const CODEC_DEFLATE = 1;
/** Stored deflated only when that takes at most this share of the body. */
const MAX_DEFLATED_SHARE = 0.8;

/** The largest body an entry may have: upstream answers are capped at it, and so is inflating one. */
export const MAX_BODY_BYTES = 32 * 1024 * 1024;

/** Below this a compressed body saves less than its headers and the CPU it costs. */
const MIN_COMPRESS_BYTES = 1024;
const COMPRESSIBLE =
  /^(?:application\/(?:[\w.+-]*\+)?(?:json|javascript|xml)|text\/|image\/svg\+xml)/;

/** Whether a body is worth compressing: text-like and 1 KiB or more (L2 storage and clients alike). */
export function isCompressible(entry: Pick<CacheEntry, 'body' | 'contentType'>): boolean {
  return entry.body.length >= MIN_COMPRESS_BYTES && COMPRESSIBLE.test(entry.contentType);
}

/** The TC2 layout proxies before TC3 wrote (no codec byte); still read, so a rolling upgrade keeps L2. */
const MAGIC_V2 = Buffer.from('TC2\n');
const V2_TYPE_LENGTH_AT = STALE_AT + 8;
const V2_TYPE_AT = V2_TYPE_LENGTH_AT + 2;

/** The JSON-headed format proxies before TC2 wrote; still read, so a rolling upgrade keeps L2. */
const MAGIC_V1 = Buffer.from('TC1\n');

/** The body as stored, and its codec: deflated where that pays (see the top of the file). */
function storedBody(entry: CacheEntry, deflate: boolean): [number, Buffer] {
  const { body } = entry;
  if (!deflate || !isCompressible(entry)) return [CODEC_NONE, body];
  // Level 4: most of level 6's saving on JSON at about half its cost; inflating costs the same.
  const deflated = deflateRawSync(body, { level: 4 });
  return deflated.length <= body.length * MAX_DEFLATED_SHARE
    ? [CODEC_DEFLATE, deflated]
    : [CODEC_NONE, body];
}

/** The value stored in Redis for an entry; `deflate: false` stores every body as it is. */
export function encodeEntry(entry: CacheEntry, { deflate = true } = {}): Buffer {
  const type = Buffer.from(entry.contentType, 'utf8');
  const [codec, body] = storedBody(entry, deflate);
  const out = Buffer.allocUnsafe(TYPE_AT + type.length + body.length);
  MAGIC.copy(out, 0);
  out.writeUInt16BE(entry.status, STATUS_AT);
  out.writeDoubleBE(entry.storedAt, STORED_AT);
  out.writeDoubleBE(entry.expiresAt, EXPIRES_AT);
  out.writeDoubleBE(entry.staleUntil, STALE_AT);
  out.writeUInt8(codec, CODEC_AT);
  out.writeUInt16BE(type.length, TYPE_LENGTH_AT);
  type.copy(out, TYPE_AT);
  body.copy(out, TYPE_AT + type.length);
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

/** Decodes what encodeEntry wrote (or the older TC2 and TC1 formats); anything else gives undefined. */
export function decodeEntry(buf: Buffer): CacheEntry | undefined {
  if (buf.length >= TYPE_AT && hasMagic(buf, MAGIC)) {
    const bodyAt = TYPE_AT + buf.readUInt16BE(TYPE_LENGTH_AT);
    if (bodyAt > buf.length) return undefined;
    const body = bodyOf(buf.readUInt8(CODEC_AT), buf.subarray(bodyAt));
    if (!body) return undefined;
    return { ...headerOf(buf), contentType: contentTypeAt(buf, TYPE_AT, bodyAt), body };
  }
  if (buf.length >= V2_TYPE_AT && hasMagic(buf, MAGIC_V2)) {
    const bodyAt = V2_TYPE_AT + buf.readUInt16BE(V2_TYPE_LENGTH_AT);
    if (bodyAt > buf.length) return undefined;
    return {
      ...headerOf(buf),
      contentType: contentTypeAt(buf, V2_TYPE_AT, bodyAt),
      body: buf.subarray(bodyAt),
    };
  }
  return decodeV1(buf);
}

/** Status and times: at the same offsets in TC3 and TC2. */
function headerOf(buf: Buffer): Omit<CacheEntry, 'contentType' | 'body'> {
  return {
    status: buf.readUInt16BE(STATUS_AT),
    storedAt: buf.readDoubleBE(STORED_AT),
    expiresAt: buf.readDoubleBE(EXPIRES_AT),
    staleUntil: buf.readDoubleBE(STALE_AT),
  };
}

/** The body a stored one stands for; undefined for an unknown codec or a damaged one. */
function bodyOf(codec: number, stored: Buffer): Buffer | undefined {
  if (codec === CODEC_NONE) return stored;
  if (codec !== CODEC_DEFLATE) return undefined;
  try {
    return inflateRawSync(stored, { maxOutputLength: MAX_BODY_BYTES });
  } catch {
    return undefined;
  }
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
