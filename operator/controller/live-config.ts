/**
 * Settings Redis takes at runtime (maxmemory, its policy) applied to running nodes with
 * `CONFIG SET`, so changing them restarts no pod. The ConfigMap carries the same values for a
 * node that starts later.
 */
import type { Connections } from '../redis/connections.ts';

export interface LiveApplied {
  /** Nodes whose settings were changed. */
  changed: string[];
  /** Nodes that could not be read or set (down, restarting): tried again later. */
  failed: string[];
}

export async function applyLiveSettings(
  conns: Connections,
  addrs: string[],
  settings: Record<string, string>,
): Promise<LiveApplied> {
  const out: LiveApplied = { changed: [], failed: [] };
  await Promise.all(
    addrs.map(async (addr) => {
      try {
        const flat = await conns.call<string[]>(addr, 'CONFIG', 'GET', ...Object.keys(settings));
        const now = new Map<string, string>();
        for (let i = 0; i + 1 < flat.length; i += 2) now.set(flat[i]!, flat[i + 1]!);
        const differing = Object.entries(settings).filter(([k, v]) => now.get(k) !== v);
        if (differing.length === 0) return;
        await conns.call(addr, 'CONFIG', 'SET', ...differing.flat());
        out.changed.push(addr);
      } catch {
        out.failed.push(addr);
      }
    }),
  );
  return out;
}
