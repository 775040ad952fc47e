/**
 * Reading an RDB file without decoding its values: each key comes out with its expiry and its
 * value's bytes exactly as stored, which is what RESTORE takes (a DUMP payload is type byte +
 * those bytes + RDB version + CRC-64). So a backup restores into any number of shards, with
 * every type the server wrote, and only keys and lengths are ever parsed.
 */
import { TiercacheError } from '../../lib/errors.ts';
import { Crc64 } from '../../lib/redis/crc64.ts';

export interface RdbEntry {
  db: number;
  key: Buffer;
  /** Absolute expiry in Unix ms; undefined for a key without a TTL. */
  expiresAtMs: number | undefined;
  type: number;
  /** The value's encoding as stored, without the type byte. */
  value: Buffer;
}

export interface RdbHeader {
  /** "REDIS" or "VALKEY". */
  magic: string;
  version: number;
}

const OP = {
  SLOT_INFO: 0xf4,
  FUNCTION2: 0xf5,
  FUNCTION_PRE_GA: 0xf6,
  MODULE_AUX: 0xf7,
  IDLE: 0xf8,
  FREQ: 0xf9,
  AUX: 0xfa,
  RESIZEDB: 0xfb,
  EXPIRETIME_MS: 0xfc,
  EXPIRETIME: 0xfd,
  SELECTDB: 0xfe,
  EOF: 0xff,
} as const;

/** Value types whose whole encoding is one RDB string (ziplist, listpack, intset, zipmap). */
const ONE_STRING_TYPES = new Set([0, 9, 10, 11, 12, 13, 16, 17, 20]);

const invalid = (message: string) => new TiercacheError('BACKUP_INVALID', `RDB: ${message}`);

/** Checks the CRC-64 that ends the file (a zero checksum means the server wrote none). */
export function verifyRdbChecksum(file: Buffer): void {
  if (file.length < 9 + 9) throw invalid(`file of ${file.length} bytes is too short`);
  const stored = file.subarray(file.length - 8);
  if (stored.every((b) => b === 0)) return;
  const computed = new Crc64().update(file.subarray(0, file.length - 8)).bytesLE;
  if (!computed.equals(stored))
    throw invalid('checksum does not match (file damaged or cut short)');
}

export function readRdbHeader(file: Buffer): RdbHeader {
  // Nine bytes either way: REDIS0011, or VALKEY080 for Valkey's own formats.
  const m = /^(REDIS|VALKEY)(\d{3,4})$/.exec(file.subarray(0, 9).toString('latin1'));
  if (!m) throw invalid('not an RDB file (no REDIS or VALKEY header)');
  return { magic: m[1]!, version: Number(m[2]) };
}

class Cursor {
  readonly buf: Buffer;
  pos: number;
  constructor(buf: Buffer, start: number) {
    this.buf = buf;
    this.pos = start;
  }

  need(n: number): void {
    if (this.pos + n > this.buf.length) throw invalid(`cut short at byte ${this.pos}`);
  }

  byte(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  skip(n: number): void {
    this.need(n);
    this.pos += n;
  }

  take(n: number): Buffer {
    this.need(n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** An RDB length; `encoding` is set instead for a specially encoded string. */
  length(): { len: number; encoding?: number } {
    const first = this.byte();
    switch (first >> 6) {
      case 0:
        return { len: first & 0x3f };
      case 1:
        return { len: ((first & 0x3f) << 8) | this.byte() };
      case 2:
        if (first === 0x80) return { len: this.take(4).readUInt32BE(0) };
        if (first === 0x81) return { len: Number(this.take(8).readBigUInt64BE(0)) };
        throw invalid(`unknown length prefix 0x${first.toString(16)} at byte ${this.pos - 1}`);
      default:
        return { len: 0, encoding: first & 0x3f };
    }
  }

  plainLength(): number {
    const { len, encoding } = this.length();
    if (encoding !== undefined)
      throw invalid(`encoded value where a length belongs at ${this.pos}`);
    return len;
  }

  /** Reads a string, decoding integers and LZF (keys need their bytes). */
  string(): Buffer {
    const { len, encoding } = this.length();
    if (encoding === undefined) return this.take(len);
    switch (encoding) {
      case 0:
        return Buffer.from(String(this.take(1).readInt8(0)));
      case 1:
        return Buffer.from(String(this.take(2).readInt16LE(0)));
      case 2:
        return Buffer.from(String(this.take(4).readInt32LE(0)));
      case 3: {
        const compressed = this.plainLength();
        const plain = this.plainLength();
        return lzfDecompress(this.take(compressed), plain);
      }
      default:
        throw invalid(`unknown string encoding ${encoding} at byte ${this.pos}`);
    }
  }

  skipString(): void {
    const { len, encoding } = this.length();
    if (encoding === undefined) this.skip(len);
    else if (encoding <= 2)
      this.skip(2 ** encoding); // an 8-, 16- or 32-bit integer
    else if (encoding === 3) {
      const compressed = this.plainLength();
      this.plainLength();
      this.skip(compressed);
    } else throw invalid(`unknown string encoding ${encoding} at byte ${this.pos}`);
  }

  skipStrings(n: number): void {
    for (let i = 0; i < n; i++) this.skipString();
  }

  /** The pre-RDB-8 textual double: a length byte, 253-255 for NaN and ±inf. */
  skipOldDouble(): void {
    const len = this.byte();
    if (len < 253) this.skip(len);
  }

  /** A module value in the self-describing form (RDB_TYPE_MODULE_2, module aux data). */
  skipModuleValue(): void {
    for (;;) {
      const opcode = this.plainLength();
      if (opcode === 0) return; // EOF
      if (opcode === 1 || opcode === 2) this.length();
      else if (opcode === 3) this.skip(4);
      else if (opcode === 4) this.skip(8);
      else if (opcode === 5) this.skipString();
      else throw invalid(`unknown module opcode ${opcode} at byte ${this.pos}`);
    }
  }

  skipStream(type: number): void {
    const listpacks = this.plainLength();
    this.skipStrings(listpacks * 2);
    this.length(); // number of entries
    this.length(); // last id: ms
    this.length(); //          seq
    if (type >= 19) for (let i = 0; i < 5; i++) this.length(); // first id, max deleted id, entries added
    const groups = this.plainLength();
    for (let g = 0; g < groups; g++) {
      this.skipString();
      this.length();
      this.length();
      if (type >= 19) this.length(); // entries read
      const pending = this.plainLength();
      for (let p = 0; p < pending; p++) {
        this.skip(16 + 8); // entry id, delivery time
        this.length(); // delivery count
      }
      const consumers = this.plainLength();
      for (let c = 0; c < consumers; c++) {
        this.skipString();
        this.skip(type >= 21 ? 16 : 8); // seen time (and active time)
        this.skip(this.plainLength() * 16);
      }
    }
  }

  skipValue(type: number): void {
    if (ONE_STRING_TYPES.has(type)) this.skipString();
    else if (type === 1 || type === 2 || type === 14) this.skipStrings(this.plainLength());
    else if (type === 4)
      this.skipStrings(this.plainLength() * 2); // hash: field, value
    else if (type === 3 || type === 5) {
      // A sorted set: member, then its score as text (3) or 8 binary bytes (5).
      const n = this.plainLength();
      for (let i = 0; i < n; i++) {
        this.skipString();
        if (type === 3) this.skipOldDouble();
        else this.skip(8);
      }
    } else if (type === 7) {
      this.length(); // module id
      this.skipModuleValue();
    } else if (type === 18) {
      const n = this.plainLength();
      for (let i = 0; i < n; i++) {
        this.length(); // container kind
        this.skipString();
      }
    } else if (type === 15 || type === 19 || type === 21) this.skipStream(type);
    else throw invalid(`value type ${type} is not supported by this version of tiercache`);
  }
}

/**
 * Every key of the file, in file order. The caller checks the checksum first
 * (verifyRdbChecksum); this fails with BACKUP_INVALID on anything it cannot read.
 */
export function* readRdb(file: Buffer): Generator<RdbEntry> {
  readRdbHeader(file);
  const c = new Cursor(file, 9);
  let db = 0;
  let expiresAtMs: number | undefined;
  for (;;) {
    const op = c.byte();
    switch (op) {
      case OP.EOF:
        return;
      case OP.SELECTDB:
        db = c.plainLength();
        continue;
      case OP.RESIZEDB:
        c.length();
        c.length();
        continue;
      case OP.AUX:
        c.skipString();
        c.skipString();
        continue;
      case OP.EXPIRETIME_MS:
        expiresAtMs = Number(c.take(8).readBigInt64LE(0));
        continue;
      case OP.EXPIRETIME:
        expiresAtMs = c.take(4).readInt32LE(0) * 1000;
        continue;
      case OP.FREQ:
        c.skip(1);
        continue;
      case OP.IDLE:
        c.length();
        continue;
      case OP.MODULE_AUX:
        c.length(); // module id
        c.length(); // when opcode
        c.length(); // when
        c.skipModuleValue();
        continue;
      case OP.FUNCTION2:
        c.skipString(); // a function library: not a key, not restored
        continue;
      case OP.SLOT_INFO:
        c.length();
        c.length();
        c.length();
        continue;
      case OP.FUNCTION_PRE_GA:
        throw invalid('functions from a Redis 7.0 release candidate are not supported');
      default: {
        const key = c.string();
        const start = c.pos;
        c.skipValue(op);
        yield { db, key, expiresAtMs, type: op, value: file.subarray(start, c.pos) };
        expiresAtMs = undefined;
      }
    }
  }
}

/** The DUMP payload RESTORE takes for an entry read from an RDB file of `rdbVersion`. */
export function dumpPayload(entry: RdbEntry, rdbVersion: number): Buffer {
  const footer = Buffer.alloc(2);
  footer.writeUInt16LE(rdbVersion);
  const body = Buffer.concat([Buffer.from([entry.type]), entry.value, footer]);
  return Buffer.concat([body, new Crc64().update(body).bytesLE]);
}

/** LZF, as Redis compresses long strings in RDB files. */
export function lzfDecompress(input: Buffer, outputLength: number): Buffer {
  const out = Buffer.alloc(outputLength);
  let ip = 0;
  let op = 0;
  while (ip < input.length) {
    let ctrl = input[ip++]!;
    if (ctrl < 32) {
      ctrl += 1; // a literal run
      if (op + ctrl > outputLength || ip + ctrl > input.length) throw invalid('bad LZF data');
      input.copy(out, op, ip, ip + ctrl);
      ip += ctrl;
      op += ctrl;
    } else {
      let len = ctrl >> 5;
      let ref = op - ((ctrl & 0x1f) << 8) - 1;
      if (len === 7) len += input[ip++]!;
      ref -= input[ip++]!;
      len += 2;
      if (ref < 0 || op + len > outputLength) throw invalid('bad LZF data');
      for (let i = 0; i < len; i++) out[op++] = out[ref++]!;
    }
  }
  if (op !== outputLength) throw invalid('bad LZF data (length differs)');
  return out;
}
