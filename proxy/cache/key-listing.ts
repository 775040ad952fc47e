/**
 * Paging over the keys of both tiers for /cache/keys and /cache/search: L2 first (SCAN over
 * every master), then the L1 keys L2 does not hold, in key order so that L1's recency changes
 * between pages move nothing. The cursor is opaque to clients; as with SCAN, a key present for
 * the whole walk is listed, one written or evicted meanwhile may be missed or listed twice.
 */
import { TiercacheError } from '../../lib/errors.ts';
import { displayKey, globEscape } from './keys.ts';
import type { MemoryTier } from './l1.ts';
import type { L2Admin, ScanPosition } from './l2-admin.ts';

export interface KeyRow {
  key: string;
  tiers: ('l1' | 'l2')[];
}

export type KeyCursor = { tier: 'l2'; at: ScanPosition } | { tier: 'l1'; after: string };

export interface KeyPage {
  rows: KeyRow[];
  /** Where the next page starts; undefined when this page ends the walk. */
  next: KeyCursor | undefined;
  l2Error?: string;
}

const start: ScanPosition = { node: 0, cursor: '0', skip: 0 };
const l1Start: Extract<KeyCursor, { tier: 'l1' }> = { tier: 'l1', after: '' };

/** L1 chunks checked against L2 per page: an L1 that L2 mostly holds costs bounded EXISTS. */
const MAX_L1_CHUNKS_PER_PAGE = 10;

export function encodeCursor(cursor: KeyCursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

const badCursor = () =>
  new TiercacheError('BAD_REQUEST', 'cursor is not one this proxy handed out; start without one');

/** The cursor a previous page handed out; anything else is a BAD_REQUEST. */
export function decodeCursor(text: string): KeyCursor {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw badCursor();
  }
  const c = value as Record<string, unknown> | null;
  if (c?.tier === 'l1' && typeof c.after === 'string') return { tier: 'l1', after: c.after };
  const at = c?.at as Record<string, unknown> | undefined;
  if (
    c?.tier === 'l2' &&
    Number.isSafeInteger(at?.node) &&
    (at!.node as number) >= 0 &&
    typeof at?.cursor === 'string' &&
    /^\d{1,20}$/.test(at.cursor) &&
    Number.isSafeInteger(at?.skip) &&
    (at!.skip as number) >= 0
  )
    return { tier: 'l2', at: at as unknown as ScanPosition };
  throw badCursor();
}

export interface ListKeysOptions {
  /** A literal substring keys must contain (no glob). */
  term?: string;
  limit: number;
  cursor?: KeyCursor;
}

export async function listKeys(
  l1: MemoryTier,
  l2: L2Admin | undefined,
  opts: ListKeysOptions,
): Promise<KeyPage> {
  const { term, limit } = opts;
  const rows: KeyRow[] = [];
  let at: KeyCursor | undefined = opts.cursor ?? (l2 ? { tier: 'l2', at: start } : l1Start);
  let l2Error: string | undefined;

  if (at.tier === 'l2' && l2) {
    try {
      const pattern = term === undefined ? '*' : `*${globEscape(term)}*`;
      const page = await l2.page(pattern, limit, at.at);
      for (const k of page.keys)
        rows.push({ key: displayKey(k), tiers: l1.has(k) ? ['l1', 'l2'] : ['l2'] });
      if (page.next) return { rows, next: { tier: 'l2', at: page.next } };
    } catch (err) {
      l2Error = (err as Error).message;
    }
    at = l1Start;
  }
  if (at.tier === 'l2') at = l1Start; // a cursor from a proxy with L2, on one without

  const after = at.after;
  const candidates = [...l1.keys()]
    .filter((k) => k > after && (term === undefined || displayKey(k).includes(term)))
    .sort();
  let taken = 0;
  for (let chunks = 0; taken < candidates.length && rows.length < limit; chunks++) {
    if (chunks === MAX_L1_CHUNKS_PER_PAGE)
      return { rows, next: { tier: 'l1', after: candidates[taken - 1]! }, ...errorOf(l2Error) };
    const chunk = candidates.slice(taken, taken + (limit - rows.length));
    taken += chunk.length;
    const inL2 = await holdsOrNone(l2, chunk, l2Error).catch((err: Error) => {
      l2Error = err.message;
      return new Set<string>();
    });
    for (const k of chunk) if (!inL2.has(k)) rows.push({ key: displayKey(k), tiers: ['l1'] });
  }
  const next: KeyCursor | undefined =
    taken < candidates.length ? { tier: 'l1', after: candidates[taken - 1]! } : undefined;
  return { rows, next, ...errorOf(l2Error) };
}

const errorOf = (l2Error: string | undefined) => (l2Error ? { l2Error } : {});

/** L2's share of `keys`; none while L2 cannot answer (those keys were not listed from it). */
const holdsOrNone = (l2: L2Admin | undefined, keys: string[], l2Error: string | undefined) =>
  l2 && !l2Error ? l2.holds(keys) : Promise.resolve(new Set<string>());
