/**
 * The CoinGecko-shaped half of the demo upstream (`/api/v3/…`): a deterministic list of 2 000
 * coins, simple prices that drift minute by minute, markets with ranks, market charts and the
 * global endpoint. Numbers are functions of coin and time, so tests can check them; bodies
 * carry `_demo`. As in the real list, coins come in no order of importance and some share a
 * symbol (a small token listed before Bitcoin is also `btc`).
 */
import { createHash } from 'node:crypto';
import type { FastifyInstance } from 'fastify';

export const DEMO_COINS = 2000;
const NAMED: [string, string, string][] = [
  ['bitcoin', 'btc', 'Bitcoin'],
  ['ethereum', 'eth', 'Ethereum'],
  ['tether', 'usdt', 'Tether'],
  ['solana', 'sol', 'Solana'],
  ['ripple', 'xrp', 'XRP'],
  ['cardano', 'ada', 'Cardano'],
  ['dogecoin', 'doge', 'Dogecoin'],
];

export interface DemoCoin {
  id: string;
  symbol: string;
  name: string;
}

/** Small coins sharing a major coin's symbol; the real list has dozens of `btc`s and `eth`s. */
const NAMESAKES: [string, string, string][] = [
  ['batcat', 'btc', 'batcat'],
  ['bitcoin-on-base', 'btc', 'Bitcoin on Base'],
  ['ethereum-meme', 'eth', 'Ethereum Meme'],
  ['solana-doge', 'sol', 'Solana Doge'],
];

function unit(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32BE(0) / 0xffffffff;
}

const listed: DemoCoin[] = [
  ...NAMED.map(([id, symbol, name]) => ({ id, symbol, name })),
  ...NAMESAKES.map(([id, symbol, name]) => ({ id, symbol, name })),
  ...Array.from({ length: DEMO_COINS - NAMED.length - NAMESAKES.length }, (_, i) => {
    const n = String(i + 1).padStart(4, '0');
    return { id: `demo-coin-${n}`, symbol: `c${n}`, name: `Demo Coin ${n}` };
  }),
];
/** Sorted by id, as CoinGecko's /coins/list is: the namesakes come before the major coins. */
export const demoCoins: DemoCoin[] = listed.sort((a, b) => (a.id < b.id ? -1 : 1));
const byId = new Map(demoCoins.map((c) => [c.id, c]));

/** [price, circulating supply] of the major coins; every other coin is small. */
const MAJORS: Record<string, [number, number]> = {
  bitcoin: [60_000, 19.7e6],
  ethereum: [3_000, 120e6],
  tether: [1, 140e9],
  solana: [150, 470e6],
  ripple: [0.6, 56e9],
  cardano: [0.45, 35e9],
  dogecoin: [0.12, 146e9],
};
function supply(id: string): number {
  return MAJORS[id]?.[1] ?? 1e5 * (1 + unit(`${id}:cap`));
}

export function demoMarketCap(id: string, atMs: number): number {
  return Math.round(demoPrice(id, atMs) * supply(id));
}

/** Market-cap rank of every coin (1 = largest), computed once: the order barely moves. */
let ranks: Map<string, number> | undefined;
function rankOf(id: string): number {
  if (!ranks) {
    const t = Date.UTC(2026, 0, 1);
    const order = [...byId.keys()].sort((a, b) => demoMarketCap(b, t) - demoMarketCap(a, t));
    ranks = new Map(order.map((coin, i) => [coin, i + 1]));
  }
  return ranks.get(id)!;
}

/** The demo price of a coin at a time: a base per coin with a slow, deterministic wave. */
export function demoPrice(id: string, atMs: number): number {
  const base = MAJORS[id]?.[0] ?? 0.05 + unit(id) * 500;
  const minute = Math.floor(atMs / 60_000);
  const wave = Math.sin(minute / 30 + unit(`${id}:phase`) * 6.28) * 0.02;
  return Math.round(base * (1 + wave) * 1e6) / 1e6;
}

export async function coingeckoRoutes(
  app: FastifyInstance,
  opts: { label: string; now?: () => number },
): Promise<void> {
  const now = opts.now ?? Date.now;

  app.get('/api/v3/coins/list', async () => demoCoins);

  app.get<{ Querystring: { ids?: string; vs_currencies?: string } }>(
    '/api/v3/simple/price',
    async (req, reply) => {
      const ids = (req.query.ids ?? '').split(',').filter(Boolean);
      const vs = (req.query.vs_currencies ?? 'usd').split(',')[0]!;
      if (ids.length === 0) return reply.code(400).send({ error: 'missing ids' });
      const out: Record<string, Record<string, number | string>> = {};
      for (const id of ids) {
        if (!byId.has(id)) continue; // CoinGecko leaves unknown ids out
        const price = demoPrice(id, now());
        out[id] = {
          [vs]: price,
          [`${vs}_24h_change`]:
            Math.round((price / demoPrice(id, now() - 86_400_000) - 1) * 1e6) / 1e4,
          [`${vs}_24h_vol`]: Math.round(price * 1e5 * (1 + unit(`${id}:vol`))),
          [`${vs}_market_cap`]: demoMarketCap(id, now()),
        };
      }
      return { ...out, _demo: opts.label };
    },
  );

  // No `_demo` field here: the answer is an array, as CoinGecko's is (the header says it).
  app.get<{ Querystring: { ids?: string; vs_currency?: string; per_page?: string } }>(
    '/api/v3/coins/markets',
    async (req, reply) => {
      if (!req.query.vs_currency) return reply.code(400).send({ error: 'missing vs_currency' });
      const perPage = Math.min(Number(req.query.per_page ?? 100) || 100, 250);
      const ids = req.query.ids
        ? req.query.ids.split(',').filter((id) => byId.has(id))
        : [...byId.keys()];
      return ids
        .sort((a, b) => rankOf(a) - rankOf(b))
        .slice(0, perPage)
        .map((id) => ({
          id,
          symbol: byId.get(id)!.symbol,
          name: byId.get(id)!.name,
          current_price: demoPrice(id, now()),
          market_cap: demoMarketCap(id, now()),
          market_cap_rank: rankOf(id),
        }));
    },
  );

  app.get<{ Params: { id: string }; Querystring: { days?: string } }>(
    '/api/v3/coins/:id/market_chart',
    async (req, reply) => {
      if (!byId.has(req.params.id)) return reply.code(404).send({ error: 'coin not found' });
      const days = Math.min(Number(req.query.days ?? 1) || 1, 365);
      const step = days <= 1 ? 300_000 : days <= 90 ? 3_600_000 : 86_400_000;
      const end = Math.floor(now() / step) * step;
      const prices: [number, number][] = [];
      for (let t = end - days * 86_400_000; t <= end; t += step)
        prices.push([t, demoPrice(req.params.id, t)]);
      return {
        _demo: opts.label,
        prices,
        market_caps: prices.map(([t, p]) => [t, Math.round(p * 1e7)]),
        total_volumes: prices.map(([t, p]) => [t, Math.round(p * 1e5)]),
      };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { from?: string; to?: string } }>(
    '/api/v3/coins/:id/market_chart/range',
    async (req, reply) => {
      if (!byId.has(req.params.id)) return reply.code(404).send({ error: 'coin not found' });
      const from = Number(req.query.from) * 1000;
      const to = Number(req.query.to) * 1000;
      if (!(from < to)) return reply.code(400).send({ error: 'from must be before to' });
      // CoinGecko's granularity by span: 5-minute points only for a span of at most a day that
      // ends now (a minute of slack for the request's own travel), hourly up to 90 days, else
      // daily. A past span, however short, gets hourly points.
      const span = to - from;
      const endsNow = to >= now() - 60_000;
      const step =
        span <= 86_400_000 + 60_000 && endsNow
          ? 300_000
          : span <= 90 * 86_400_000
            ? 3_600_000
            : 86_400_000;
      const prices: [number, number][] = [];
      for (let t = Math.ceil(from / step) * step; t <= Math.min(to, now()); t += step)
        prices.push([t, demoPrice(req.params.id, t)]);
      return { _demo: opts.label, prices, market_caps: [], total_volumes: [] };
    },
  );

  app.get('/api/v3/global', async () => {
    const t = now();
    const btc = demoPrice('bitcoin', t) * 19_700_000;
    const eth = demoPrice('ethereum', t) * 120_000_000;
    const total = (btc + eth) / 0.72;
    return {
      _demo: opts.label,
      data: {
        active_cryptocurrencies: DEMO_COINS,
        total_market_cap: { usd: Math.round(total) },
        total_volume: { usd: Math.round(total * 0.04) },
        market_cap_percentage: {
          btc: Math.round((btc / total) * 1e4) / 100,
          eth: Math.round((eth / total) * 1e4) / 100,
        },
        updated_at: Math.floor(t / 1000),
      },
    };
  });
}
