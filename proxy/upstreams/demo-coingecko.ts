/**
 * The CoinGecko-shaped half of the demo upstream (`/api/v3/…`): a deterministic list of 2 000
 * coins, simple prices that drift minute by minute, market charts and the global endpoint.
 * Numbers are functions of coin and time, so tests can check them; bodies carry `_demo`.
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

export const demoCoins: DemoCoin[] = [
  ...NAMED.map(([id, symbol, name]) => ({ id, symbol, name })),
  ...Array.from({ length: DEMO_COINS - NAMED.length }, (_, i) => {
    const n = String(i + 1).padStart(4, '0');
    return { id: `demo-coin-${n}`, symbol: `c${n}`, name: `Demo Coin ${n}` };
  }),
];
const byId = new Map(demoCoins.map((c) => [c.id, c]));

function unit(text: string): number {
  return createHash('sha256').update(text).digest().readUInt32BE(0) / 0xffffffff;
}

/** The demo price of a coin at a time: a base per coin with a slow, deterministic wave. */
export function demoPrice(id: string, atMs: number): number {
  const base = id === 'bitcoin' ? 60_000 : id === 'ethereum' ? 3_000 : 0.05 + unit(id) * 500;
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
          [`${vs}_market_cap`]: Math.round(price * 1e7 * (1 + unit(`${id}:cap`))),
        };
      }
      return { ...out, _demo: opts.label };
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
      // CoinGecko's granularity by how far back `from` lies: 5-minute within a day of now,
      // hourly within 90 days, else daily (a minute of slack for the request's own travel).
      const back = now() - from - 60_000;
      const step = back <= 86_400_000 ? 300_000 : back <= 90 * 86_400_000 ? 3_600_000 : 86_400_000;
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
