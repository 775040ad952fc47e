/**
 * Technical analysis over a price series (pure): SMA, EMA, RSI (Wilder), MACD and Bollinger
 * bands, as TA-Lib defines them. Each result has one value per input point; points before the
 * indicator is defined are null, so results line up with the series' timestamps.
 */
import { TiercacheError } from '../../lib/errors.ts';

export type Series = (number | null)[];

export function sma(values: number[], period: number): Series {
  checkPeriod(period);
  const out: Series = new Array(values.length).fill(null);
  let sum = 0;
  for (let i = 0; i < values.length; i++) {
    sum += values[i]!;
    if (i >= period) sum -= values[i - period]!;
    if (i >= period - 1) out[i] = sum / period;
  }
  return out;
}

/** EMA with k = 2 / (period + 1), seeded with the SMA of the first `period` values. */
export function ema(values: number[], period: number): Series {
  checkPeriod(period);
  const out: Series = new Array(values.length).fill(null);
  if (values.length < period) return out;
  const k = 2 / (period + 1);
  let prev = values.slice(0, period).reduce((a, b) => a + b, 0) / period;
  out[period - 1] = prev;
  for (let i = period; i < values.length; i++) {
    prev = values[i]! * k + prev * (1 - k);
    out[i] = prev;
  }
  return out;
}

/** RSI with Wilder's smoothing; the first value sits at index `period`. */
export function rsi(values: number[], period = 14): Series {
  checkPeriod(period);
  const out: Series = new Array(values.length).fill(null);
  if (values.length <= period) return out;
  let gain = 0;
  let loss = 0;
  for (let i = 1; i <= period; i++) {
    const change = values[i]! - values[i - 1]!;
    if (change > 0) gain += change;
    else loss -= change;
  }
  gain /= period;
  loss /= period;
  const value = () => (loss === 0 ? 100 : 100 - 100 / (1 + gain / loss));
  out[period] = value();
  for (let i = period + 1; i < values.length; i++) {
    const change = values[i]! - values[i - 1]!;
    gain = (gain * (period - 1) + Math.max(change, 0)) / period;
    loss = (loss * (period - 1) + Math.max(-change, 0)) / period;
    out[i] = value();
  }
  return out;
}

export interface Macd {
  macd: Series;
  signal: Series;
  histogram: Series;
}

/** MACD line = EMA(fast) − EMA(slow); signal = EMA(signalPeriod) of the MACD line. */
export function macd(values: number[], fast = 12, slow = 26, signalPeriod = 9): Macd {
  if (fast >= slow) throw new RangeError('MACD needs fast < slow');
  const f = ema(values, fast);
  const s = ema(values, slow);
  const line: Series = values.map((_, i) =>
    f[i] !== null && s[i] !== null ? f[i]! - s[i]! : null,
  );
  const start = line.findIndex((v) => v !== null);
  const signal: Series = new Array(values.length).fill(null);
  if (start >= 0) {
    const defined = line.slice(start) as number[];
    ema(defined, signalPeriod).forEach((v, i) => {
      signal[start + i] = v;
    });
  }
  const histogram = line.map((v, i) => (v !== null && signal[i] !== null ? v - signal[i]! : null));
  return { macd: line, signal, histogram };
}

export interface Bollinger {
  middle: Series;
  upper: Series;
  lower: Series;
}

/** SMA ± k population standard deviations over the same window. */
export function bollinger(values: number[], period = 20, k = 2): Bollinger {
  const middle = sma(values, period);
  const upper: Series = new Array(values.length).fill(null);
  const lower: Series = new Array(values.length).fill(null);
  for (let i = period - 1; i < values.length; i++) {
    const mean = middle[i]!;
    let sq = 0;
    for (let j = i - period + 1; j <= i; j++) sq += (values[j]! - mean) ** 2;
    const sd = Math.sqrt(sq / period);
    upper[i] = mean + k * sd;
    lower[i] = mean - k * sd;
  }
  return { middle, upper, lower };
}

function checkPeriod(period: number): void {
  if (!Number.isInteger(period) || period < 1)
    throw new RangeError(`period must be a whole number ≥ 1, got ${period}`);
}

export const DEFAULT_INDICATORS = 'sma:20,ema:12,rsi:14,macd,bollinger:20';

/**
 * The indicators a spec names (`sma:20,ema:12,rsi:14,macd,bollinger:20`), computed over the
 * values; an unknown name or a bad period is a BAD_REQUEST naming it.
 */
export function indicators(values: number[], spec: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of spec.split(',')) {
    const [name, arg] = item.split(':');
    const period = arg === undefined ? undefined : Number(arg);
    if (period !== undefined && !(Number.isInteger(period) && period >= 1 && period <= 500)) {
      throw new TiercacheError(
        'BAD_REQUEST',
        `indicator ${item}: the period must be a whole number from 1 to 500`,
      );
    }
    switch (name) {
      case 'sma':
        out[item] = sma(values, period ?? 20);
        break;
      case 'ema':
        out[item] = ema(values, period ?? 12);
        break;
      case 'rsi':
        out[item] = rsi(values, period ?? 14);
        break;
      case 'macd':
        out[item] = macd(values);
        break;
      case 'bollinger':
        out[item] = bollinger(values, period ?? 20);
        break;
      default:
        throw new TiercacheError(
          'BAD_REQUEST',
          `unknown indicator ${name}; known: sma, ema, rsi, macd, bollinger`,
        );
    }
  }
  return out;
}
