/**
 * Just enough of the DNS wire format (RFC 1035) for cluster DNS: parse one question, answer it
 * with A records, NODATA or NXDOMAIN. Pure functions, unit-tested.
 */

export interface Question {
  id: number;
  name: string;
  type: number;
  cls: number;
  /** The question section exactly as received, echoed in the answer. */
  raw: Buffer;
  recursionDesired: boolean;
}

export const TYPE_A = 1;
export const TYPE_AAAA = 28;
const RCODE_NXDOMAIN = 3;
const RCODE_FORMERR = 1;

export function parseQuery(msg: Buffer): Question | undefined {
  if (msg.length < 12) return undefined;
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  if (flags & 0x8000) return undefined; // a response, not a query
  if (msg.readUInt16BE(4) !== 1) return undefined; // exactly one question
  const labels: string[] = [];
  let at = 12;
  for (;;) {
    if (at >= msg.length) return undefined;
    const len = msg[at]!;
    if (len === 0) {
      at += 1;
      break;
    }
    if (len & 0xc0 || at + 1 + len > msg.length) return undefined; // no compression in questions
    labels.push(msg.subarray(at + 1, at + 1 + len).toString('ascii'));
    at += 1 + len;
  }
  if (at + 4 > msg.length) return undefined;
  return {
    id,
    name: labels.join('.').toLowerCase(),
    type: msg.readUInt16BE(at),
    cls: msg.readUInt16BE(at + 2),
    raw: msg.subarray(12, at + 4),
    recursionDesired: (flags & 0x0100) !== 0,
  };
}

function header(id: number, rd: boolean, rcode: number, answers: number): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16BE(id, 0);
  // QR=1, AA=1, RD copied, RA=0
  h.writeUInt16BE(0x8000 | 0x0400 | (rd ? 0x0100 : 0) | rcode, 2);
  h.writeUInt16BE(1, 4);
  h.writeUInt16BE(answers, 6);
  return h;
}

/** An answer with one A record per address (empty = NODATA), or NXDOMAIN when `addresses` is undefined. */
export function buildAnswer(
  q: Question,
  addresses: string[] | undefined,
  ttlSeconds: number,
): Buffer {
  if (addresses === undefined)
    return Buffer.concat([header(q.id, q.recursionDesired, RCODE_NXDOMAIN, 0), q.raw]);
  const records = addresses.map((ip) => {
    const rr = Buffer.alloc(16);
    rr.writeUInt16BE(0xc00c, 0); // pointer to the question's name
    rr.writeUInt16BE(TYPE_A, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(ttlSeconds, 6);
    rr.writeUInt16BE(4, 10);
    ip.split('.').forEach((octet, i) => {
      rr[12 + i] = Number(octet);
    });
    return rr;
  });
  return Buffer.concat([header(q.id, q.recursionDesired, 0, records.length), q.raw, ...records]);
}

export function formatError(msg: Buffer): Buffer {
  const h = Buffer.alloc(12);
  if (msg.length >= 2) h.writeUInt16BE(msg.readUInt16BE(0), 0);
  h.writeUInt16BE(0x8000 | RCODE_FORMERR, 2);
  return h;
}
