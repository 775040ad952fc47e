import { describe, expect, it } from 'vitest';
import { classifyCoingecko } from '../../proxy/crypto/endpoints.ts';

describe('classifyCoingecko', () => {
  it.each([
    ['/simple/price', 'prices', 'prices'],
    ['/simple/token_price/ethereum', 'prices', 'prices'],
    ['/simple/supported_vs_currencies', 'meta', 'meta'],
    ['/coins/list', 'meta', 'meta'],
    ['/asset_platforms', 'meta', 'meta'],
    ['/coins/bitcoin/market_chart', 'charts-open', 'charts'],
    ['/coins/bitcoin/market_chart/range', 'charts-open', 'charts'],
    ['/coins/bitcoin/ohlc', 'charts-open', 'charts'],
    ['/coins/ethereum/contract/0xabc/market_chart', 'charts-open', 'charts'],
    ['/coins/bitcoin/history', 'charts-closed', 'charts'],
    ['/coins/markets', 'indicators', 'indicators'],
    ['/global', 'indicators', 'indicators'],
    ['/coins/bitcoin', 'indicators', 'indicators'],
    ['/search/trending', 'indicators', 'indicators'],
  ])('%s → TTL %s, category %s', (path, ttl, category) => {
    expect(classifyCoingecko(path)).toEqual({ ttl, category });
  });

  it('keeps the key’s own plan and usage private', () => {
    expect(classifyCoingecko('/key')).toBe('private');
  });
});
