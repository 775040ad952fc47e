/**
 * Executing slot moves: fix (close open slots, cover uncovered ones), rebalance, add-shard and
 * remove-shard. Several slots move at once; progress (slots, keys, keys/s) is reported as it
 * goes. Every operation starts from what Redis says now, so running it again after a crash
 * finishes the job.
 */
import { TiercacheError } from '../../lib/errors.ts';
import { parseAddr } from '../../lib/redis/addr.ts';
import { isFailed, isMaster, type NodeInfo, slotsOf } from '../../lib/redis/topology.ts';
import { migrateSlotsAtomically, supportsAtomicMigration } from './atomic-migrate.ts';
import { checkCluster } from './check.ts';
import { type Connections, parseInfo } from './connections.ts';
import { assertEmpty } from './create.ts';
import {
  assignSlot,
  DEFAULT_BATCH_BYTES,
  type MigrateOptions,
  migrateSlot,
  moveKeys,
  type SlotMove,
} from './migrate.ts';
import { type ClusterView, observe } from './observe.ts';
import { type MasterSlots, planRebalance } from './plan-rebalance.ts';
import { until } from './wait.ts';

/** Slots migrated at once: enough to hide round trips, few enough not to swamp a node. */
export const DEFAULT_CONCURRENCY = 16;

export interface ReshardOptions {
  /** Slots migrated in parallel. */
  concurrency?: number;
  /** Keys asked for at a time per slot. */
  batch?: number;
  /** Bytes per MIGRATE call at most (default 8 MiB). */
  batchBytes?: number;
  log?: (line: string) => void;
  /** Called after each slot moved (the operator keeps it in status.migration). */
  onProgress?: (p: { slotsDone: number; slotsTotal: number; keysMoved: number }) => void;
  timeoutMs?: number;
  /**
   * Aborted: no new slot starts; the slots in flight finish (none is left open) and the
   * operation rejects with CANCELLED. How the operator stops mid-migration on SIGTERM.
   */
  signal?: AbortSignal | undefined;
  /**
   * How slots move: `auto` (default) uses Valkey's atomic slot migration where every master
   * has it and MIGRATE otherwise; `legacy` always MIGRATE (benchmarks compare the two).
   */
  engine?: 'auto' | 'legacy';
}

export interface ReshardResult {
  slotsMoved: number;
  keysMoved: number;
  seconds: number;
  keysPerSecond: number;
}

const cancelled = (done: string) =>
  new TiercacheError(
    'CANCELLED',
    `stopped after ${done}: shutting down; the slots in flight were finished, none is open`,
  );

/** How every path here moves keys: the caller's batch sizes, MIGRATE's own 10 s deadline. */
function migrateOptions(opts: ReshardOptions, extra: Partial<MigrateOptions> = {}): MigrateOptions {
  return {
    batch: opts.batch ?? 200,
    batchBytes: opts.batchBytes ?? DEFAULT_BATCH_BYTES,
    migrateTimeoutMs: 10_000,
    otherMasters: [],
    ...extra,
  };
}

function masters(view: ClusterView): NodeInfo[] {
  return [...view.known.values()].filter(
    (n) => isMaster(n) && !isFailed(n) && !n.flags.has('handshake'),
  );
}

/**
 * Waits until every node agrees on the slot map: the new owners' bumped epochs reach the rest
 * by gossip, and a command that returns earlier would hand back a cluster still settling.
 */
async function converged(conns: Connections, seeds: string[], timeoutMs: number): Promise<void> {
  await until(
    'every node to agree on the slot map',
    async () =>
      !checkCluster(await observe(conns, seeds)).problems.some((p) => p.includes('do not agree')),
    timeoutMs,
    200,
  );
}

async function runMoves(
  conns: Connections,
  view: ClusterView,
  moves: SlotMove[],
  opts: ReshardOptions,
): Promise<ReshardResult> {
  const log = opts.log ?? (() => {});
  const started = Date.now();
  const all = masters(view).map((m) => m.addr);
  let keys = 0;
  let slots = 0;
  let next = 0;
  const report = () => {
    const s = (Date.now() - started) / 1000;
    log(
      `moved ${slots}/${moves.length} slots, ${keys} keys (${Math.round(keys / Math.max(s, 0.001))} keys/s)`,
    );
  };
  const ticker = setInterval(report, 1000);
  if (moves.length > 0 && opts.engine !== 'legacy' && (await supportsAtomicMigration(conns, all))) {
    try {
      await migrateSlotsAtomically(conns, moves, {
        signal: opts.signal,
        timeoutMs: opts.timeoutMs ?? 60_000,
        onJobDone: (s, k) => {
          slots += s;
          keys += k;
          opts.onProgress?.({ slotsDone: slots, slotsTotal: moves.length, keysMoved: keys });
        },
      });
    } finally {
      clearInterval(ticker);
    }
    report();
    await converged(conns, all, opts.timeoutMs ?? 60_000);
    return result(started, slots, keys);
  }
  // One failure stops every worker: none may go on moving slots from a view that is stale.
  let failed = false;
  const worker = async () => {
    while (!failed && !opts.signal?.aborted && next < moves.length) {
      const move = moves[next++]!;
      await migrateSlot(
        conns,
        move,
        migrateOptions(opts, {
          otherMasters: all.filter((a) => a !== move.from.addr && a !== move.to.addr),
          onKeys: (n) => {
            keys += n;
          },
        }),
      );
      slots += 1;
      opts.onProgress?.({ slotsDone: slots, slotsTotal: moves.length, keysMoved: keys });
    }
  };
  const guarded = () =>
    worker().catch((err) => {
      failed = true;
      throw err;
    });
  try {
    // allSettled: the reconcile ends only once every worker has stopped (no zombie moves).
    const results = await Promise.allSettled(
      Array.from(
        { length: Math.min(opts.concurrency ?? DEFAULT_CONCURRENCY, Math.max(1, moves.length)) },
        guarded,
      ),
    );
    const error = results.find((r) => r.status === 'rejected');
    if (error) throw (error as PromiseRejectedResult).reason;
  } finally {
    clearInterval(ticker);
  }
  if (slots < moves.length && opts.signal?.aborted) {
    report();
    throw cancelled(`${slots} of ${moves.length} slots moved`);
  }
  if (moves.length > 0) {
    report();
    // A source that missed its SETSLOT NODE (best effort) still shows the slot as migrating.
    await fixCluster(conns, all, { ...opts, log: () => {} });
    await converged(conns, all, opts.timeoutMs ?? 60_000);
  }
  return result(started, slots, keys);
}

function result(started: number, slots: number, keys: number): ReshardResult {
  const seconds = (Date.now() - started) / 1000;
  return {
    slotsMoved: slots,
    keysMoved: keys,
    seconds,
    keysPerSecond: seconds > 0 ? keys / seconds : 0,
  };
}

/** Closes open slots (finishing each migration, so no key is lost) and covers uncovered slots. */
export async function fixCluster(
  conns: Connections,
  seeds: string[],
  opts: ReshardOptions = {},
): Promise<{ closed: number; covered: number }> {
  const log = opts.log ?? (() => {});
  const view = await observe(conns, seeds);
  const check = checkCluster(view);
  const byId = new Map([...view.known.values()].map((n) => [n.id, n]));
  const owners = new Map<number, string>();
  for (const m of masters(view)) for (const s of slotsOf(m.slots)) owners.set(s, m.id);
  const all = masters(view).map((m) => m.addr);
  const done = new Set<number>();
  for (const open of check.openSlots) {
    if (done.has(open.slot)) continue;
    if (opts.signal?.aborted) throw cancelled(`${done.size} open slots closed`);
    done.add(open.slot);
    const node = view.reports.find((r) => r.addr === open.node)!;
    // The migration's two ends: the slot's owner (source) and the importing node (target).
    const targetId = open.state === 'importing' ? node.id : open.peer;
    const sourceId = owners.get(open.slot) ?? (open.state === 'migrating' ? node.id : open.peer);
    const source = byId.get(sourceId);
    const target = byId.get(targetId);
    if (!source || !target)
      throw new TiercacheError(
        'UPSTREAM_FAILED',
        `slot ${open.slot}: cannot find both ends of its migration`,
      );
    if (source.id === target.id) {
      // The migration finished (its target owns the slot) but this node's own state was never
      // closed, e.g. a manager killed between SETSLOT NODE on the target and on the source.
      await conns.call(open.node, 'CLUSTER', 'SETSLOT', open.slot, 'STABLE');
      log(`slot ${open.slot}: closed a finished migration left open on ${open.node}`);
      continue;
    }
    log(`slot ${open.slot}: finishing its migration ${source.addr} → ${target.addr}`);
    const move: SlotMove = {
      slot: open.slot,
      from: { id: source.id, addr: source.addr },
      to: { id: target.id, addr: target.addr },
    };
    await reconcileTargetOwner(conns, view, move, opts);
    await conns.call(target.addr, 'CLUSTER', 'SETSLOT', open.slot, 'IMPORTING', source.id);
    await conns.call(source.addr, 'CLUSTER', 'SETSLOT', open.slot, 'MIGRATING', target.id);
    await moveKeys(conns, move, migrateOptions(opts));
    await assignSlot(conns, open.slot, target.id, [
      target.addr,
      source.addr,
      ...all.filter((a) => a !== source.addr && a !== target.addr),
    ]);
  }
  let covered = 0;
  if (check.uncovered.length > 0) {
    const ms = masters(view);
    for (const slot of check.uncovered) {
      // A master that still has keys of the slot takes it; else the one with the fewest slots.
      let owner: NodeInfo | undefined;
      for (const m of ms) {
        if ((await conns.call<number>(m.addr, 'CLUSTER', 'COUNTKEYSINSLOT', slot)) > 0) owner = m;
      }
      owner ??= ms.reduce((a, b) =>
        [...slotsOf(a.slots)].length <= [...slotsOf(b.slots)].length ? a : b,
      );
      await conns.call(owner.addr, 'CLUSTER', 'ADDSLOTS', slot);
      covered += 1;
    }
    log(`covered ${covered} uncovered slots`);
  }
  return { closed: done.size, covered };
}

/**
 * A target that imports a slot ignores news of its owner, and drops the slots of a master that
 * turned replica: when the source died mid-migration and its replica took over, the target sees
 * the slot as nobody's and refuses both the rest of the keys and any command on the keys it
 * already has ("Hash slot not served"). It is told who owns the slot (SETSLOT NODE is allowed
 * while it does not own the slot itself, keys and all), so the move goes on forward. Only a
 * target that took the slot as its own gives its keys back to the owner first.
 */
async function reconcileTargetOwner(
  conns: Connections,
  view: ClusterView,
  move: SlotMove,
  opts: ReshardOptions,
): Promise<void> {
  const { slot, from, to } = move;
  const targetView = view.reports.find((r) => r.id === to.id);
  const owner = targetView?.nodes.find(
    (n) => isMaster(n) && n.slots.some((r) => slot >= r.start && slot <= r.end),
  );
  if (!targetView || owner?.id === from.id) return;
  if (owner?.id === to.id) {
    await moveKeys(conns, { slot, from: to, to: from }, migrateOptions(opts));
    await conns.call(to.addr, 'CLUSTER', 'SETSLOT', slot, 'STABLE');
  }
  await conns.call(to.addr, 'CLUSTER', 'SETSLOT', slot, 'NODE', from.id);
}

function toMasterSlots(view: ClusterView, weight: (m: NodeInfo) => number): MasterSlots[] {
  return masters(view).map((m) => ({
    id: m.id,
    addr: m.addr,
    slots: [...slotsOf(m.slots)],
    weight: weight(m),
  }));
}

function movesFor(view: ClusterView, planned: ReturnType<typeof planRebalance>): SlotMove[] {
  const byId = new Map(masters(view).map((m) => [m.id, m]));
  return planned.map((p) => ({
    slot: p.slot,
    from: { id: p.from, addr: byId.get(p.from)!.addr },
    to: { id: p.to, addr: byId.get(p.to)!.addr },
  }));
}

export async function rebalance(
  conns: Connections,
  seeds: string[],
  opts: ReshardOptions & {
    threshold?: number;
    /** Masters (by address) that get no share: they are on their way out. */
    leaving?: string[];
  } = {},
): Promise<ReshardResult> {
  await fixCluster(conns, seeds, opts);
  const view = await observe(conns, seeds);
  const leaving = new Set(opts.leaving ?? []);
  const moves = movesFor(
    view,
    planRebalance(
      toMasterSlots(view, (m) => (leaving.has(m.addr) ? 0 : 1)),
      opts.threshold ?? 2,
    ),
  );
  opts.log?.(
    moves.length === 0 ? 'already balanced' : `rebalancing: ${moves.length} slots to move`,
  );
  return runMoves(conns, view, moves, opts);
}

async function meet(
  conns: Connections,
  seed: string,
  addr: string,
  timeoutMs: number,
): Promise<string> {
  const { host, port } = parseAddr(addr);
  await conns.call(seed, 'CLUSTER', 'MEET', host, port);
  const id = await conns.call<string>(addr, 'CLUSTER', 'MYID');
  await until(
    `${addr} to join`,
    async () => parseInfo(await conns.call<string>(addr, 'CLUSTER', 'INFO')).cluster_state === 'ok',
    timeoutMs,
  );
  return id;
}

export async function addShard(
  conns: Connections,
  seed: string,
  shard: { master: string; replicas: string[] },
  opts: ReshardOptions & { rebalance: boolean; threshold?: number },
): Promise<ReshardResult | undefined> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  // Run again after a crash, nodes that already joined this cluster are taken as they are.
  const members = new Set([...(await observe(conns, [seed])).known.values()].map((n) => n.id));
  const joined = async (a: string) => members.has(await conns.call<string>(a, 'CLUSTER', 'MYID'));
  for (const a of [shard.master, ...shard.replicas])
    if (!(await joined(a))) await assertEmpty(conns, a);
  const masterId = (await joined(shard.master))
    ? await conns.call<string>(shard.master, 'CLUSTER', 'MYID')
    : await meet(conns, seed, shard.master, timeoutMs);
  // Joined earlier (a heal met it) or just now: it takes keys only once its cluster state is ok.
  await until(
    `${shard.master} to report cluster_state ok`,
    async () =>
      parseInfo(await conns.call<string>(shard.master, 'CLUSTER', 'INFO')).cluster_state === 'ok',
    timeoutMs,
  );
  opts.log?.(`${shard.master} is an empty master of the cluster`);
  for (const r of shard.replicas) {
    if (!(await joined(r))) await meet(conns, seed, r, timeoutMs);
    await until(
      `${r} to replicate ${shard.master}`,
      async () => {
        await conns.call(r, 'CLUSTER', 'REPLICATE', masterId);
        return true;
      },
      timeoutMs,
      200,
    );
    opts.log?.(`${r} replicates ${shard.master}`);
  }
  if (!opts.rebalance) return undefined;
  // Every node must know the new master before slots move to it.
  await until(
    'every node to know the new master',
    async () => {
      const view = await observe(conns, [seed]);
      return view.reports.every((r) => r.nodes.some((n) => n.id === masterId && isMaster(n)));
    },
    timeoutMs,
  );
  return rebalance(conns, [seed], opts);
}

export async function removeShard(
  conns: Connections,
  seed: string,
  masterAddr: string,
  opts: ReshardOptions = {},
): Promise<ReshardResult> {
  await fixCluster(conns, [seed], opts);
  const view = await observe(conns, [seed]);
  const leaving = masters(view).find((m) => m.addr === masterAddr);
  if (!leaving)
    throw new TiercacheError('BAD_REQUEST', `${masterAddr} is not a master of this cluster`);
  if (masters(view).length <= 1)
    throw new TiercacheError('BAD_REQUEST', 'the last master of a cluster cannot be removed');
  // A master that loses its last slot would otherwise turn into a replica of the node that
  // took it (cluster-allow-replica-migration) and sync that node's data, and so would its
  // replicas: they all must stay with the shard that is going.
  const replicas = [...view.known.values()].filter((n) => n.masterId === leaving.id);
  await Promise.all(
    [masterAddr, ...replicas.map((r) => r.addr)].map((a) =>
      conns.call(a, 'CONFIG', 'SET', 'cluster-allow-replica-migration', 'no'),
    ),
  );
  const weights = (m: NodeInfo) => (m.id === leaving.id ? 0 : 1);
  const moves = movesFor(view, planRebalance(toMasterSlots(view, weights), 0));
  opts.log?.(`draining ${masterAddr}: ${moves.length} slots to move`);
  const result = await runMoves(conns, view, moves, opts);
  // Empty before anything is forgotten.
  const keys = await conns.call<number>(masterAddr, 'DBSIZE');
  const own = parseInfo(await conns.call<string>(masterAddr, 'CLUSTER', 'INFO'));
  const after = await observe(conns, [seed]);
  const still = [...after.known.values()].find((n) => n.id === leaving.id);
  if (keys !== 0 || (still && still.slots.length > 0)) {
    throw new TiercacheError(
      'UPSTREAM_FAILED',
      `${masterAddr} still holds ${keys} keys or slots (cluster_slots_assigned ${own.cluster_slots_assigned}); not forgetting it`,
    );
  }
  const goingIds = [
    leaving.id,
    ...[...after.known.values()].filter((n) => n.masterId === leaving.id).map((n) => n.id),
  ];
  const going = goingIds.map((id) => after.known.get(id)!);
  const staying = after.reports.filter((r) => !goingIds.includes(r.id));
  for (const r of staying)
    for (const id of goingIds)
      await conns.call(r.addr, 'CLUSTER', 'FORGET', id).catch(() => undefined);
  // The removed nodes hold nothing now; a soft reset stops them gossiping their way back in.
  // A replica may still be applying the drain's deletions: it is reset once it is empty too.
  await Promise.all(
    going
      .filter((n) => n.id !== leaving.id)
      .map((n) =>
        until(
          `${n.addr} to be empty like its master`,
          async () => (await conns.call<number>(n.addr, 'DBSIZE').catch(() => 0)) === 0,
          opts.timeoutMs ?? 60_000,
          100,
        ).catch(() => undefined),
      ),
  );
  for (const n of going) {
    if ((await conns.call<number>(n.addr, 'DBSIZE').catch(() => -1)) === 0) {
      await conns.call(n.addr, 'CLUSTER', 'RESET', 'SOFT').catch(() => undefined);
    }
  }
  opts.log?.(`forgot ${going.map((n) => n.addr).join(', ')}`);
  return result;
}
