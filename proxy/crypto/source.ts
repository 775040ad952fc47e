/** Where an answer assembled from several cached entries came from (pure). */
import type { Source } from '../cache/tiered.ts';

/** X-Cache of an answer assembled from several entries: the weakest source wins. */
export function overallSource(sources: string[]): Source {
  if (sources.includes('MISS')) return 'MISS';
  if (sources.includes('STALE')) return 'STALE';
  return sources.every((s) => s === 'L1') ? 'L1' : 'L2';
}
