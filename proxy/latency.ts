/**
 * How long answers take, per data route class and where the answer came from, as the
 * histogram `tiercache_request_duration_seconds` (from the route's handler to the answer's
 * first bytes handed to the socket). The hot path counts into plain arrays: prom-client's
 * observe hashes its labels on every call (~1 µs, 2 % of an L1 hit), so /metrics writes these
 * counts in the exposition format itself.
 */
import type { Source } from './cache/tiered.ts';
import type { RouteClass } from './route-class.ts';

/** Seconds: an L1 hit lands in the first bucket, a far upstream in the last ones. */
export const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15,
];

/** Where an answer came from: a cache tier, the upstream (MISS), or a pass-through (BYPASS). */
export type AnswerSource = Source | 'BYPASS';
const SOURCES: AnswerSource[] = ['L1', 'L2', 'MISS', 'STALE', 'BYPASS'];
const ROUTES: RouteClass[] = ['tmdb', 'images', 'crypto'];

/** One route class and source's counts. */
export class LatencyCells {
  /** Answers per bucket (not cumulative); the last slot counts those over every bound. */
  readonly counts = new Float64Array(LATENCY_BUCKETS.length + 1);
  sum = 0;
  count = 0;

  /** An answer whose handler began at `startedAt` (performance.now()) is being written now. */
  since(startedAt: number): void {
    const seconds = (performance.now() - startedAt) / 1000;
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]!) i++;
    this.counts[i]! += 1;
    this.sum += seconds;
    this.count += 1;
  }
}

export type RouteLatency = Record<AnswerSource, LatencyCells>;

export class AnswerLatency {
  readonly #byRoute = new Map<RouteClass, RouteLatency>();

  constructor() {
    for (const route of ROUTES) {
      const cells = {} as RouteLatency;
      for (const source of SOURCES) cells[source] = new LatencyCells();
      this.#byRoute.set(route, cells);
    }
  }

  /** The cells of one route class, by source: looked up once, when its routes are registered. */
  of(route: RouteClass): RouteLatency {
    return this.#byRoute.get(route)!;
  }

  /** The histogram in Prometheus's text format, with `labels` (the region) on every line. */
  exposition(labels: Record<string, string>): string {
    const name = 'tiercache_request_duration_seconds';
    const fixed = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
    const lines = [
      `# HELP ${name} Time from a data route's handler to its answer being written, by route class and where the answer came from`,
      `# TYPE ${name} histogram`,
    ];
    for (const [route, cells] of this.#byRoute) {
      for (const source of SOURCES) {
        const c = cells[source];
        const base = [...fixed, `route="${route}"`, `source="${source}"`].join(',');
        let cumulative = 0;
        LATENCY_BUCKETS.forEach((le, i) => {
          cumulative += c.counts[i]!;
          lines.push(`${name}_bucket{${base},le="${le}"} ${cumulative}`);
        });
        lines.push(`${name}_bucket{${base},le="+Inf"} ${c.count}`);
        lines.push(`${name}_sum{${base}} ${c.sum}`);
        lines.push(`${name}_count{${base}} ${c.count}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}
