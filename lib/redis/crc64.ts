/**
 * Redis's CRC-64 (Jones polynomial, reflected, as `crc64.c`): the checksum that ends an RDB
 * file and a DUMP payload. Kept as two 32-bit halves so a large RDB checks at memory speed.
 */
const REFLECTED_POLY = 0x95ac9329ac4bc9b5n;

const TABLE_LO = new Uint32Array(256);
const TABLE_HI = new Uint32Array(256);
for (let i = 0; i < 256; i++) {
  let crc = BigInt(i);
  for (let bit = 0; bit < 8; bit++) crc = crc & 1n ? (crc >> 1n) ^ REFLECTED_POLY : crc >> 1n;
  TABLE_LO[i] = Number(crc & 0xffffffffn);
  TABLE_HI[i] = Number(crc >> 32n);
}

/** A running CRC-64: feed it chunks in order, read `value` (or `bytesLE`) at the end. */
export class Crc64 {
  #lo = 0;
  #hi = 0;

  update(chunk: Uint8Array): this {
    let lo = this.#lo;
    let hi = this.#hi;
    for (let i = 0; i < chunk.length; i++) {
      const index = (lo ^ chunk[i]!) & 0xff;
      lo = ((lo >>> 8) | (hi << 24)) ^ TABLE_LO[index]!;
      hi = (hi >>> 8) ^ TABLE_HI[index]!;
    }
    this.#lo = lo >>> 0;
    this.#hi = hi >>> 0;
    return this;
  }

  get value(): bigint {
    return (BigInt(this.#hi) << 32n) | BigInt(this.#lo);
  }

  /** The checksum as Redis stores it: 8 bytes, little-endian. */
  get bytesLE(): Buffer {
    const out = Buffer.alloc(8);
    out.writeUInt32LE(this.#lo, 0);
    out.writeUInt32LE(this.#hi, 4);
    return out;
  }
}

export function crc64(data: Uint8Array): bigint {
  return new Crc64().update(data).value;
}
