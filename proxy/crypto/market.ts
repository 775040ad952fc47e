/** Seed 002's market indicators, from the upstream's global endpoint (cached as one entry). */
import { TiercacheError } from '../../lib/errors.ts';
import type { Source, TieredCache } from '../cache/tiered.ts';
import type { CryptoUpstream } from '../upstreams/crypto.ts';

export async function marketIndicators(
  cache: TieredCache,
  crypto: CryptoUpstream,
): Promise<{ body: Record<string, unknown>; source: Source }> {
  const served = await cache.serve(crypto.global());
  if (served.entry.status !== 200)
    throw new TiercacheError('UPSTREAM_FAILED', `upstream answered ${served.entry.status}`);
  const { data } = JSON.parse(served.entry.body.toString('utf8'));
  return {
    body: {
      total_market_cap_usd: data.total_market_cap?.usd,
      total_volume_24h_usd: data.total_volume?.usd,
      btc_dominance: data.market_cap_percentage?.btc,
      eth_dominance: data.market_cap_percentage?.eth,
      active_cryptocurrencies: data.active_cryptocurrencies,
      updated_at: new Date(served.entry.storedAt).toISOString(),
    },
    source: served.source,
  };
}
