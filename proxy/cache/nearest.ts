/**
 * Region-local reads (REDIS_READ_FROM=nearest): the L2 look goes to whichever copy of the
 * key's slot — its master or one of its replicas — answers this proxy fastest, which for a
 * proxy far from the masters is a replica in its own region. Latency is measured, not
 * configured: every node the cluster client holds is PINGed every PING_EVERY_MS, so the choice
 * follows failovers, new replicas and moved pods without a region map to keep current.
 */
import type { Cluster, Redis } from 'ioredis';
import { withTimeout } from '../../lib/timeout.ts';

/** How often each node is PINGed. */
const PING_EVERY_MS = 2000;
/** Weight of the newest PING in a node's latency (the rest is its history). */
const NEWEST_WEIGHT = 0.3;

const addrOf = (node: Redis): string => `${node.options.host}:${node.options.port}`;

/** Latency per node (pure bookkeeping; `pick` is what ioredis's scaleReads calls). */
export class NodeLatencies {
  readonly #ms = new Map<string, number>();

  record(addr: string, ms: number): void {
    const before = this.#ms.get(addr);
    this.#ms.set(
      addr,
      before === undefined || !Number.isFinite(before)
        ? ms
        : before * (1 - NEWEST_WEIGHT) + ms * NEWEST_WEIGHT,
    );
  }

  /** A PING that failed or timed out: never chosen until one succeeds again. */
  unreachable(addr: string): void {
    this.#ms.set(addr, Number.POSITIVE_INFINITY);
  }

  /** Every node's latency in ms (null: its last PING failed), for /status. */
  snapshot(): Record<string, number | null> {
    return Object.fromEntries(
      [...this.#ms].map(([addr, ms]) => [
        addr,
        Number.isFinite(ms) ? Math.round(ms * 100) / 100 : null,
      ]),
    );
  }

  latencyOf(addr: string): number | undefined {
    return this.#ms.get(addr);
  }

  /** Forgets the nodes not in `addrs` (gone from the client: their figures would go stale). */
  keepOnly(addrs: Set<string>): void {
    for (const addr of this.#ms.keys()) if (!addrs.has(addr)) this.#ms.delete(addr);
  }

  /**
   * Of the slot's nodes (`nodes[0]` its master, then its replicas, as ioredis hands them; one
   * whose connection is gone is undefined), the one with the lowest known latency; the master
   * while none is known or every one is down.
   */
  pick<N>(nodes: (N | undefined)[], addr: (node: N) => string): N | undefined {
    let best = nodes[0];
    let bestMs = best
      ? (this.#ms.get(addr(best)) ?? Number.POSITIVE_INFINITY)
      : Number.POSITIVE_INFINITY;
    for (const node of nodes.slice(1)) {
      if (node === undefined) continue;
      const ms = this.#ms.get(addr(node)) ?? Number.POSITIVE_INFINITY;
      if (ms < bestMs || best === undefined) {
        best = node;
        bestMs = ms;
      }
    }
    return best;
  }
}

/**
 * Measures every node of `cluster` until stopped; `scaleReads` is the option ioredis routes
 * read-only commands with.
 */
export function nearestReads(cluster: () => Cluster | undefined, timeoutMs: number) {
  const latencies = new NodeLatencies();
  const measure = () => {
    const nodes = cluster()?.nodes('all') ?? [];
    latencies.keepOnly(new Set(nodes.map(addrOf)));
    for (const node of nodes) {
      const addr = addrOf(node);
      const started = performance.now();
      withTimeout(node.ping(), timeoutMs, 'PING').then(
        () => latencies.record(addr, performance.now() - started),
        () => latencies.unreachable(addr),
      );
    }
  };
  const timer = setInterval(measure, PING_EVERY_MS);
  timer.unref();
  return {
    latencies,
    /** The latency of the node a read of `slot` goes to now (undefined: none known). */
    latencyOfSlot(client: Cluster, slot: number): number | undefined {
      const keys = (client as unknown as { slots: string[][] }).slots[slot];
      if (!keys) return undefined;
      const chosen = latencies.pick(keys, (k) => k);
      return chosen === undefined ? undefined : latencies.latencyOf(chosen);
    },
    /** Measures at once (the client just became ready). */
    measure,
    scaleReads: (nodes: (Redis | undefined)[]) => latencies.pick(nodes, addrOf),
    stop: () => clearInterval(timer),
  };
}
