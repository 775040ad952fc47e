/**
 * Chart data cached in chunks (closed days or hours long, the open one briefly, a wider range
 * fetching only the missing span) and technical analysis computed from the cached series.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { sma } from '../../proxy/crypto/analysis.ts';
import { CHUNK_MS, chunkStart, type Interval, isUnsettled } from '../../proxy/crypto/candles.ts';
import { type DemoUpstream, startDemoUpstream } from '../../proxy/upstreams/demo-server.ts';
import { json } from '../helpers/json.ts';
import { type RunningProxy, startProxy } from '../helpers/proxy.ts';

const DAY = 86_400_000;
const RANGE = '/api/v3/coins/bitcoin/market_chart/range';
let upstream: DemoUpstream;
const proxies: RunningProxy[] = [];

async function proxy(env: Record<string, string> = {}): Promise<RunningProxy> {
  const p = await startProxy({
    CRYPTO_API_URL: `${upstream.url}/api/v3`,
    ADMIN_TOKEN: ADMIN,
    ...env,
  });
  proxies.push(p);
  return p;
}
/** Where a refresh of the unsettled chunks starts: the open chunk, or one that closed a moment ago. */
function oldestUnsettled(interval: Interval, now: number): number {
  const open = chunkStart(now, interval);
  const previous = open - CHUNK_MS[interval];
  return isUnsettled(previous, interval, now) ? previous : open;
}
const ADMIN = 'charts-admin';
const lastRange = () => {
  const q = new URLSearchParams(upstream.stats.lastQuery[RANGE]);
  return { from: Number(q.get('from')) * 1000, to: Number(q.get('to')) * 1000 };
};

beforeAll(async () => {
  upstream = await startDemoUpstream();
});
afterEach(async () => {
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  upstream.reset();
});
afterAll(async () => {
  await upstream.close();
});

describe('GET /api/chart_data', () => {
  it('serves hourly points for a range, then a wider range fetches only the missing days', async () => {
    const p = await proxy();
    const today = Math.floor(Date.now() / DAY) * DAY;
    const three = await fetch(`${p.url}/api/chart_data?symbol=BTC&interval=hourly&range=3d`);
    expect(three.headers.get('x-cache')).toBe('MISS');
    const body = await json(three);
    expect(body.points.length).toBeGreaterThanOrEqual(71);
    const steps = new Set(
      body.points.slice(1).map((pt: number[], i: number) => pt[0]! - body.points[i][0]),
    );
    expect([...steps]).toEqual([3_600_000]);
    expect(upstream.stats.byPath[RANGE]).toBe(1);
    expect(lastRange().from).toBe(today - 3 * DAY);

    expect(
      (await fetch(`${p.url}/api/chart_data?symbol=BTC&interval=hourly&range=3d`)).headers.get(
        'x-cache',
      ),
    ).toBe('L1');
    expect(upstream.stats.byPath[RANGE]).toBe(1);

    const seven = await json(fetch(`${p.url}/api/chart_data?symbol=BTC&interval=hourly&range=7d`));
    expect(upstream.stats.byPath[RANGE]).toBe(2);
    expect(lastRange()).toEqual({ from: today - 7 * DAY, to: today - 3 * DAY });
    expect(seven.points.length).toBeGreaterThan(body.points.length);
    // The overlapping part is the same series.
    const last = body.points.at(-1);
    expect(seven.points.find((pt: number[]) => pt[0] === last[0])).toEqual(last);
  });

  it('refreshes only today’s chunk when the open candle expires', async () => {
    const p = await proxy({ CRYPTO_OPEN_CANDLE_TTL: '0.05' });
    await fetch(`${p.url}/api/chart_data?symbol=BTC&interval=daily&range=30d`);
    await new Promise((r) => setTimeout(r, 100)); // let the 50 ms open-candle TTL pass
    const res = await fetch(`${p.url}/api/chart_data?symbol=BTC&interval=daily&range=30d`);
    expect(res.status).toBe(200);
    expect(upstream.stats.byPath[RANGE]).toBe(2);
    // Today, and in the first hour of a day also yesterday (its last points still settling).
    expect(lastRange().from).toBe(oldestUnsettled('daily', Date.now()));
    const { points } = await json(res);
    expect(points.length).toBeGreaterThanOrEqual(30);
  });

  it('serves 5-minute points for the last day in hour chunks, refreshing only the open hour', async () => {
    const p = await proxy({ CRYPTO_OPEN_CANDLE_TTL: '0.05' });
    const before = Date.now();
    const first = await fetch(`${p.url}/api/chart_data?symbol=BTC&interval=5m&range=1d`);
    expect(first.status).toBe(200);
    const { points } = await json(first);
    // One upstream call, never reaching back more than a day (older spans answer hourly).
    expect(upstream.stats.byPath[RANGE]).toBe(1);
    expect(lastRange().from).toBeGreaterThanOrEqual(before - DAY - 1000);
    const steps = points.slice(1).map((pt: number[], i: number) => pt[0]! - points[i]![0]!);
    expect(new Set(steps)).toEqual(new Set([300_000]));
    expect(points.length).toBeGreaterThanOrEqual(287);
    expect(points[0][0]).toBeGreaterThanOrEqual(before - DAY);

    await new Promise((r) => setTimeout(r, 100)); // let the 50 ms open-candle TTL pass
    const again = await json(fetch(`${p.url}/api/chart_data?symbol=BTC&interval=5m&range=1d`));
    expect(upstream.stats.byPath[RANGE]).toBe(2);
    // Only the open hour (and the one before in its first 5 minutes) was fetched again.
    expect(lastRange().from).toBe(oldestUnsettled('5m', Date.now()));
    expect(again.points.length).toBeGreaterThanOrEqual(287);
    expect((await fetch(`${p.url}/api/chart_data?symbol=BTC&interval=5m&range=2d`)).status).toBe(
      400,
    );
  });

  it('fetches a missing past hour of 5-minute points up to now, the only span answered at 5 minutes', async () => {
    const p = await proxy();
    const url = `${p.url}/api/chart_data?symbol=BTC&interval=5m&range=1d`;
    await fetch(url);
    // An hour in the middle of the day drops out of the cache (evicted, or invalidated).
    const hour = chunkStart(Date.now() - 6 * 3_600_000, '5m');
    const label = new Date(hour).toISOString().slice(0, 13);
    const gone = await fetch(
      `${p.url}/cache/invalidate?key=${encodeURIComponent(`crypto:charts:BTC:usd:5m:${label}`)}`,
      { method: 'POST', headers: { authorization: `Bearer ${ADMIN}` } },
    );
    expect(gone.status).toBe(200);
    const { points } = await json(fetch(url));
    expect(upstream.stats.byPath[RANGE]).toBe(2);
    const { from, to } = lastRange();
    expect(from).toBe(hour);
    expect(to).toBeGreaterThanOrEqual(Date.now() - 60_000); // a past span would answer hourly
    const inHour = points.filter((pt: number[]) => pt[0]! >= hour && pt[0]! < hour + 3_600_000);
    expect(inHour.length).toBe(12);
  });

  it('rejects a bad interval, range or symbol list with a 400', async () => {
    const p = await proxy();
    for (const q of [
      'symbol=BTC&interval=weekly',
      'symbol=BTC&range=90d',
      'symbol=BTC&range=7',
      'symbol=BTC,ETH',
      'range=1d',
    ]) {
      const res = await fetch(`${p.url}/api/chart_data?${q}`);
      expect(res.status, q).toBe(400);
    }
    expect((await fetch(`${p.url}/api/chart_data?symbol=NOPE9`)).status).toBe(404);
  });
});

describe('GET /api/analysis', () => {
  it('computes indicators from the cached series and caches the result', async () => {
    const p = await proxy();
    const chart = await json(fetch(`${p.url}/api/chart_data?symbol=ETH&interval=hourly&range=10d`));
    const calls = upstream.stats.byPath['/api/v3/coins/ethereum/market_chart/range'];
    const first = await fetch(
      `${p.url}/api/analysis?symbol=ETH&interval=hourly&range=10d&indicators=sma:5,rsi:14,macd,bollinger:20`,
    );
    expect(first.headers.get('x-cache')).toBe('MISS');
    const a = await json(first);
    expect(upstream.stats.byPath['/api/v3/coins/ethereum/market_chart/range']).toBe(calls); // from the cached series
    expect(a.timestamps).toEqual(chart.points.map((pt: number[]) => pt[0]));
    expect(a.indicators['sma:5']).toEqual(
      sma(
        chart.points.map((pt: number[]) => pt[1]),
        5,
      ),
    );
    expect(
      a.indicators['rsi:14']
        .filter((v: number | null) => v !== null)
        .every((v: number) => v >= 0 && v <= 100),
    ).toBe(true);
    expect(Object.keys(a.indicators.macd)).toEqual(['macd', 'signal', 'histogram']);
    expect(
      (
        await fetch(
          `${p.url}/api/analysis?symbol=ETH&interval=hourly&range=10d&indicators=sma:5,rsi:14,macd,bollinger:20`,
        )
      ).headers.get('x-cache'),
    ).toBe('L1');
  });

  it('rejects unknown indicators and bad periods before fetching anything', async () => {
    const p = await proxy();
    expect((await fetch(`${p.url}/api/analysis?symbol=BTC&indicators=vwap`)).status).toBe(400);
    expect((await fetch(`${p.url}/api/analysis?symbol=BTC&indicators=sma:0`)).status).toBe(400);
    expect(upstream.stats.total).toBe(0);
  });
});
