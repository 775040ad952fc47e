/**
 * Which coin a ticker symbol means (pure). CoinGecko's coin list is sorted by id and many
 * coins share a symbol (dozens of `btc`s), so the list order says nothing: a shared symbol
 * means the coin with the best market-cap rank, and an operator's override table wins over both.
 */

export interface ListedCoin {
  id: string;
  symbol: string;
}

/** Coin ids per upper-case symbol. */
export function idsBySymbol(list: ListedCoin[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const coin of list) {
    const symbol = coin.symbol.toUpperCase();
    const ids = out.get(symbol);
    if (ids) ids.push(coin.id);
    else out.set(symbol, [coin.id]);
  }
  return out;
}

/** What a symbol resolves to before any rank is known. */
export type Candidates =
  | { kind: 'id'; id: string }
  | { kind: 'unknown' }
  | { kind: 'shared'; ids: string[] };

export function candidatesFor(
  symbol: string,
  bySymbol: Map<string, string[]>,
  overrides: ReadonlyMap<string, string>,
): Candidates {
  const pinned = overrides.get(symbol);
  if (pinned) return { kind: 'id', id: pinned };
  const ids = bySymbol.get(symbol);
  if (!ids) return { kind: 'unknown' };
  return ids.length === 1 ? { kind: 'id', id: ids[0]! } : { kind: 'shared', ids };
}

/**
 * The candidate with the best (lowest) market-cap rank; undefined when none has a rank, since
 * then nothing says which coin is meant.
 */
export function pickByRank(ids: string[], rank: ReadonlyMap<string, number>): string | undefined {
  let best: string | undefined;
  for (const id of ids) {
    const r = rank.get(id);
    if (r !== undefined && (best === undefined || r < rank.get(best)!)) best = id;
  }
  return best;
}
