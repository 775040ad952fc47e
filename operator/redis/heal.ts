/**
 * `cluster heal`: brings a cluster whose nodes moved or died back to health without touching
 * data. It re-introduces nodes at their current addresses (MEET, matched by node id) before
 * forgetting anything; forgets failed nodes that own no slots and answer at no given address,
 * on every node within the same minute so none gossips them back; and gives masters without
 * a working replica one of the spare nodes. Never CLUSTER RESET, FLUSHALL or create.
 */
import { parseAddr } from '../../lib/redis/addr.ts';
import { isFailed, isMaster } from '../../lib/redis/topology.ts';
import type { Connections } from './connections.ts';
import { assertEmpty } from './create.ts';
import { type NodeReport, observe } from './observe.ts';
import { until } from './wait.ts';

/** How long a MEET is given before the nodes that still do not see each other are met again. */
const REMEET_MS = 2000;

export interface HealOptions {
  spares?: string[];
  /** Forget failed nodes (default true); off while a node's owner may still come back. */
  forget?: boolean;
  /**
   * Only nodes at these addresses are introduced to each other (the operator's kept pods);
   * by default every node reachable from the given ones.
   */
  members?: string[];
  timeoutMs?: number;
  log?: (line: string) => void;
}

export interface HealResult {
  met: number;
  forgotten: string[];
  replicasAdded: { spare: string; master: string }[];
}

/** True when `from` sees `to` at its current address, connected and not failed. */
function sees(from: NodeReport, to: NodeReport): boolean {
  const n = from.nodes.find((x) => x.id === to.id);
  return n !== undefined && n.addr === to.addr && !isFailed(n) && !n.flags.has('pfail');
}

export async function healCluster(
  conns: Connections,
  addrs: string[],
  opts: HealOptions = {},
): Promise<HealResult> {
  const log = opts.log ?? (() => {});
  const timeoutMs = opts.timeoutMs ?? 60_000;
  let view = await observe(conns, addrs);
  const members = opts.members ? new Set(opts.members) : undefined;
  const live = () => view.reports.filter((r) => !members || members.has(r.addr));

  // 1. Re-introduce every reachable node to every other at its current address.
  const meetUnseen = async () => {
    let sent = 0;
    for (const a of live()) {
      for (const b of live()) {
        if (a.id === b.id || sees(a, b)) continue;
        const { host, port } = parseAddr(b.addr);
        // A node that stopped answering meanwhile is met again on the next round.
        await conns.call(a.addr, 'CLUSTER', 'MEET', host, port).catch(() => undefined);
        sent += 1;
      }
    }
    return sent;
  };
  let met = await meetUnseen();
  if (met > 0) {
    log(`introduced nodes to each other (${met} MEETs)`);
    // Looked at again from every given address, so a node that answers again is included; and
    // met again while unseen, because Redis drops a MEET whose handshake fails (the target
    // paused or restarting, a packet lost) without a word, and nothing else would repeat it.
    let metAt = Date.now();
    await until(
      'every reachable node to see every other at its current address',
      async () => {
        view = await observe(conns, [
          ...new Set([...view.reports.map((r) => r.addr), ...(opts.members ?? addrs)]),
        ]);
        if (live().every((a) => live().every((b) => a.id === b.id || sees(a, b)))) return true;
        if (Date.now() - metAt >= REMEET_MS) {
          met += await meetUnseen();
          metAt = Date.now();
        }
        return false;
      },
      timeoutMs,
      250,
    );
  }

  // 2. Forget the dead: failed, holding no slots, and not one of the nodes that answered.
  const liveIds = new Set(live().map((r) => r.id));
  const dead =
    opts.forget === false
      ? []
      : [...view.known.values()].filter(
          (n) => !liveIds.has(n.id) && isFailed(n) && n.slots.length === 0,
        );
  for (const d of dead) {
    await Promise.all(
      live().map((r) => conns.call(r.addr, 'CLUSTER', 'FORGET', d.id).catch(() => undefined)),
    );
    log(`forgot ${d.id} (was ${d.addr})`);
  }

  // 3. Spares become replicas of masters that have no working replica.
  const replicasAdded: HealResult['replicasAdded'] = [];
  const spares = [...(opts.spares ?? [])];
  view = await observe(
    conns,
    live().map((r) => r.addr),
  );
  const masters = live()
    .map((r) => r.nodes.find((n) => n.flags.has('myself'))!)
    .filter((n) => isMaster(n) && n.slots.length > 0);
  for (const m of masters) {
    const hasReplica = live().some(
      (r) => r.nodes.find((n) => n.flags.has('myself'))?.masterId === m.id,
    );
    if (hasReplica) continue;
    const spare = spares.shift();
    if (!spare) {
      log(`master ${m.addr} has no working replica and no spare is left`);
      continue;
    }
    await assertEmpty(conns, spare);
    const { host, port } = parseAddr(spare);
    await conns.call(m.addr, 'CLUSTER', 'MEET', host, port);
    await until(
      `${spare} to join`,
      async () => (await conns.call<string>(spare, 'CLUSTER', 'NODES')).includes(m.id),
      timeoutMs,
      200,
    );
    await until(
      `${spare} to replicate ${m.addr}`,
      async () => {
        await conns.call(spare, 'CLUSTER', 'REPLICATE', m.id);
        return true;
      },
      timeoutMs,
      200,
    );
    replicasAdded.push({ spare, master: m.addr });
    log(`${spare} now replicates ${m.addr}`);
  }
  return { met, forgotten: dead.map((d) => d.id), replicasAdded };
}
