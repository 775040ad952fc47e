/** Indicator values checked against hand computations on small series. */
import { describe, expect, it } from 'vitest';
import { bollinger, ema, macd, rsi, sma } from '../../proxy/crypto/analysis.ts';

const close = (a: (number | null)[], b: (number | null)[]) => {
  expect(a).toHaveLength(b.length);
  a.forEach((v, i) => {
    if (b[i] === null) expect(v).toBeNull();
    else expect(v).toBeCloseTo(b[i]!, 6);
  });
};

describe('technical analysis', () => {
  it('SMA averages the last `period` values', () => {
    close(sma([1, 2, 3, 4, 5], 3), [null, null, 2, 3, 4]);
  });

  it('EMA is seeded with the SMA and smoothed with k = 2/(n+1)', () => {
    // k = 0.5: seed (1+2+3)/3 = 2; then 4·.5 + 2·.5 = 3; 5·.5 + 3·.5 = 4; 10·.5 + 4·.5 = 7
    close(ema([1, 2, 3, 4, 5, 10], 3), [null, null, 2, 3, 4, 7]);
  });

  it('RSI uses Wilder smoothing', () => {
    // changes +1 +1 -1 | -1 +1: gain 2/3, loss 1/3 → 66.67; then gain 4/9, loss 5/9 → 44.44;
    // then gain 17/27, loss 10/27 → RS 1.7 → 62.96
    close(rsi([1, 2, 3, 2, 1, 2], 3), [
      null,
      null,
      null,
      100 - 100 / 3,
      100 - 100 / 1.8,
      100 - 100 / 2.7,
    ]);
    close(rsi([1, 2, 3, 4], 3), [null, null, null, 100]);
  });

  it('MACD is EMA(fast) − EMA(slow) with an EMA signal line', () => {
    const values = [1, 2, 3, 4, 5, 6, 7, 8];
    const m = macd(values, 2, 4, 2);
    // EMA2 (k=2/3) seeded 1.5: 2.5, 3.5, … = value − 0.5; EMA4 (k=0.4) seeded 2.5: 3.5, 4.5, … = value − 1.5
    close(m.macd, [null, null, null, 1, 1, 1, 1, 1]);
    close(m.signal, [null, null, null, null, 1, 1, 1, 1]);
    close(m.histogram, [null, null, null, null, 0, 0, 0, 0]);
  });

  it('Bollinger bands are the SMA ± k population standard deviations', () => {
    const b = bollinger([2, 4, 4, 4, 5, 5, 7, 9], 8, 2);
    // mean 5, population sd 2
    close(b.middle, [null, null, null, null, null, null, null, 5]);
    close(b.upper, [null, null, null, null, null, null, null, 9]);
    close(b.lower, [null, null, null, null, null, null, null, 1]);
  });

  it('rejects a period that is not a whole number ≥ 1', () => {
    expect(() => sma([1, 2], 0)).toThrow(RangeError);
    expect(() => macd([1, 2, 3], 5, 3)).toThrow(/fast < slow/);
  });
});
