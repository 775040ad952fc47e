/**
 * Carrying out what failure needs (I/O; the decisions are in failure-plan.ts): a replica
 * takes over from a master (coordinated, forced, or by takeover when no majority can vote),
 * quarantined nodes are admitted, and a shard with no surviving copy gets its slots back on
 * its new empty master. Never CLUSTER RESET or FLUSHALL on a node that holds data.
 */

import { type SlotRange, slotCount } from '../../lib/redis/topology.ts';
import type { Connections } from '../redis/connections.ts';
import type { ClusterView } from '../redis/observe.ts';
import { until } from '../redis/wait.ts';
import { REPLICATION_USER } from '../resources/names.ts';
import type { LostSlots, Promotion } from './failure-plan.ts';

/** `CLUSTER FAILOVER` modes: coordinated (master alive), FORCE (master down), TAKEOVER (no vote). */
export type FailoverMode = 'COORDINATED' | 'FORCE' | 'TAKEOVER';

const ELECTION_MS = 3000;
/**
 * A coordinated failover may take as long as Redis lets it (CLUSTER_MF_TIMEOUT, 5 s): the
 * replica first waits for the paused master's last writes. Giving up sooner called a failover
 * failed that then won, and the next try waited out the election back-off (seen as a cluster
 * stuck in SpreadingMasters under load).
 */
const MANUAL_FAILOVER_MS = 5500;
/**
 * A FORCE election is over in tens of ms when a majority of masters votes; when none comes by
 * then, the masters that would vote are down too (the view was older than the crash): take over.
 */
const FORCE_ELECTION_MS = 1000;

async function becameMaster(conns: Connections, addr: string, ms: number): Promise<boolean> {
  try {
    await until(
      `${addr} to become master`,
      async () => (await conns.call<unknown[]>(addr, 'ROLE'))[0] === 'master',
      ms,
      10,
    );
    return true;
  } catch {
    return false;
  }
}

/**
 * Makes the replica at `addr` its shard's master; returns the mode that did it. A FORCE that
 * wins no election (the masters cannot vote) is followed by a TAKEOVER.
 */
export async function failOverTo(
  conns: Connections,
  addr: string,
  mode: FailoverMode,
): Promise<FailoverMode> {
  await conns.call(addr, 'CLUSTER', 'FAILOVER', ...(mode === 'COORDINATED' ? [] : [mode]));
  const waitMs = {
    COORDINATED: MANUAL_FAILOVER_MS,
    FORCE: FORCE_ELECTION_MS,
    TAKEOVER: ELECTION_MS,
  };
  if (await becameMaster(conns, addr, waitMs[mode])) return mode;
  if (mode !== 'FORCE') throw new Error(`${addr} did not take over (CLUSTER FAILOVER ${mode})`);
  await conns.call(addr, 'CLUSTER', 'FAILOVER', 'TAKEOVER');
  if (await becameMaster(conns, addr, ELECTION_MS)) return 'TAKEOVER';
  throw new Error(`${addr} did not take over (CLUSTER FAILOVER TAKEOVER)`);
}

export interface Promoted extends Promotion {
  mode: FailoverMode;
  ms: number;
}

/** Promotes the chosen replica of every lost master; one that fails is left for the next reconcile. */
export async function promote(
  conns: Connections,
  promotions: Promotion[],
  onError: (p: Promotion, err: Error) => void,
): Promise<Promoted[]> {
  const done = await Promise.all(
    promotions.map(async (p) => {
      const started = performance.now();
      try {
        const mode = await failOverTo(conns, p.to.addr, p.takeover ? 'TAKEOVER' : 'FORCE');
        // Its own replicas-to-be must be able to sync from it.
        await admit(conns, [p.to.addr]);
        return { ...p, mode, ms: Math.round(performance.now() - started) };
      } catch (err) {
        onError(p, err as Error);
        return undefined;
      }
    }),
  );
  return done.filter((p): p is Promoted => p !== undefined);
}

/**
 * Lets quarantined nodes serve replication (a no-op where they already may): their default
 * user, and the replication user where the node has one (asked, not assumed: SETUSER would
 * create it, and the node may be switching to or from it).
 */
export async function admit(conns: Connections, addrs: string[]): Promise<void> {
  const allow = (a: string, user: string) =>
    conns.call(a, 'ACL', 'SETUSER', user, '+sync', '+psync');
  await Promise.all(
    addrs.map(async (a) => {
      await allow(a, 'default');
      if ((await conns.call(a, 'ACL', 'GETUSER', REPLICATION_USER)) !== null)
        await allow(a, REPLICATION_USER);
    }),
  );
}

/**
 * Gives a dead master's slots to its shard's new empty master: every node forgets the dead
 * one (which unassigns its slots everywhere at once), then the new master claims them with a
 * fresh epoch. Only for a shard with no copy left (failure-plan.ts `lostSlots`).
 */
export async function reassignSlots(
  conns: Connections,
  view: ClusterView,
  lost: LostSlots,
): Promise<number> {
  await Promise.all(
    view.reports
      .filter((r) => r.id !== lost.deadId)
      .map((r) => conns.call(r.addr, 'CLUSTER', 'FORGET', lost.deadId).catch(() => undefined)),
  );
  await admit(conns, [lost.master.addr]);
  const ranges: SlotRange[] = lost.slots;
  await conns.call(
    lost.master.addr,
    'CLUSTER',
    'ADDSLOTSRANGE',
    ...ranges.flatMap((r) => [r.start, r.end]),
  );
  await conns.call(lost.master.addr, 'CLUSTER', 'BUMPEPOCH');
  return slotCount(ranges);
}
