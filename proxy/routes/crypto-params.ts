/** Query parameters of the crypto routes, checked: a bad one is a 400 naming it. */
import { TiercacheError } from '../../lib/errors.ts';
import type { CoinNames } from '../crypto/prices.ts';

const SYMBOL = /^[A-Z0-9]{1,15}$/;
const COIN_ID = /^[a-z0-9][a-z0-9-]{0,99}$/;
const MAX_COINS = 250;

export function parseVs(raw: string | undefined): string {
  const vs = (raw ?? 'usd').toLowerCase();
  if (!/^[a-z]{3,5}$/.test(vs))
    throw new TiercacheError('BAD_REQUEST', 'vs_currency must be a currency code such as usd');
  return vs;
}

function parseList(raw: string, normalise: (s: string) => string): string[] {
  return [
    ...new Set(
      raw
        .split(',')
        .map((s) => normalise(s.trim()))
        .filter(Boolean),
    ),
  ];
}

function checked(names: string[], what: string, pattern: RegExp): string[] {
  if (names.length > MAX_COINS)
    throw new TiercacheError('BAD_REQUEST', `at most ${MAX_COINS} ${what} per request`);
  const bad = names.filter((s) => !pattern.test(s));
  if (bad.length > 0)
    throw new TiercacheError('BAD_REQUEST', `invalid ${what}: ${bad.join(', ')}`, {
      invalid: bad,
    });
  return names;
}

export function parseSymbols(raw: string | undefined): string[] {
  const symbols = parseList(raw ?? '', (s) => s.toUpperCase());
  if (symbols.length === 0)
    throw new TiercacheError('BAD_REQUEST', 'symbols is required, e.g. ?symbols=BTC,ETH');
  return checked(symbols, 'symbols', SYMBOL);
}

/** `symbols=BTC,ETH` (ticker symbols) or `ids=bitcoin,ethereum` (CoinGecko ids), not both. */
export function parseCoins(q: { symbols?: string; ids?: string }): CoinNames {
  if (q.ids !== undefined && q.symbols !== undefined)
    throw new TiercacheError('BAD_REQUEST', 'give symbols or ids, not both');
  if (q.ids === undefined) return { by: 'symbol', names: parseSymbols(q.symbols) };
  const ids = parseList(q.ids, (s) => s.toLowerCase());
  if (ids.length === 0)
    throw new TiercacheError('BAD_REQUEST', 'ids is empty, e.g. ?ids=bitcoin,ethereum');
  return { by: 'id', names: checked(ids, 'ids', COIN_ID) };
}
