import { describe, expect, it } from 'vitest';
import { candidatesFor, idsBySymbol, pickByRank } from '../../proxy/crypto/symbols.ts';

const LIST = [
  { id: 'batcat', symbol: 'btc' },
  { id: 'bitcoin', symbol: 'btc' },
  { id: 'dogecoin', symbol: 'doge' },
];

describe('symbol → coin id', () => {
  const bySymbol = idsBySymbol(LIST);

  it('names every candidate of a shared symbol and the one coin of a unique one', () => {
    expect(candidatesFor('BTC', bySymbol, new Map())).toEqual({
      kind: 'shared',
      ids: ['batcat', 'bitcoin'],
    });
    expect(candidatesFor('DOGE', bySymbol, new Map())).toEqual({ kind: 'id', id: 'dogecoin' });
    expect(candidatesFor('NOPE', bySymbol, new Map())).toEqual({ kind: 'unknown' });
  });

  it('lets an override win over the list, even for a symbol the list lacks', () => {
    const overrides = new Map([
      ['BTC', 'batcat'],
      ['NEW', 'new-coin'],
    ]);
    expect(candidatesFor('BTC', bySymbol, overrides)).toEqual({ kind: 'id', id: 'batcat' });
    expect(candidatesFor('NEW', bySymbol, overrides)).toEqual({ kind: 'id', id: 'new-coin' });
  });

  it('picks the best market-cap rank whatever the list order; no rank at all picks none', () => {
    expect(
      pickByRank(
        ['batcat', 'bitcoin'],
        new Map([
          ['batcat', 1834],
          ['bitcoin', 1],
        ]),
      ),
    ).toBe('bitcoin');
    expect(pickByRank(['batcat', 'bitcoin'], new Map([['batcat', 1834]]))).toBe('batcat');
    expect(pickByRank(['batcat', 'bitcoin'], new Map())).toBeUndefined();
  });
});
