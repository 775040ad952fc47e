/**
 * Moving one slot with its keys, the safe way: IMPORTING on the target, MIGRATING on the
 * source, MIGRATE … KEYS in batches until the source has no key left in the slot, and only
 * then SETSLOT NODE — on the target first, then the source, then every other master.
 * Ownership never moves while COUNTKEYSINSLOT is non-zero. BUSYKEY, TRYAGAIN and timeouts
 * (big keys) are retried; a crash mid-way leaves an open slot that `fix` finishes.
 */
import { TiercacheError } from '../../lib/errors.ts';
import { parseAddr } from './addr.ts';
import type { Connections } from './connections.ts';

export interface SlotMove {
  slot: number;
  from: { id: string; addr: string };
  to: { id: string; addr: string };
}

export interface MigrateOptions {
  password?: string | undefined;
  /** Keys per MIGRATE call. */
  batch: number;
  /** MIGRATE's own timeout (ms); doubled on each timeout, for big keys. */
  migrateTimeoutMs: number;
  /** Masters that must learn the new owner as well (besides source and target). */
  otherMasters: string[];
  onKeys?: (n: number) => void;
}

const MAX_ATTEMPTS = 20;

export async function migrateSlot(
  conns: Connections,
  move: SlotMove,
  opts: MigrateOptions,
): Promise<number> {
  const { slot, from, to } = move;
  await conns.call(to.addr, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id);
  await conns.call(from.addr, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id);
  // moveKeys returns only once the source has no key left in the slot.
  const moved = await moveKeys(conns, move, opts);
  // ... and it was the source that said so: a node restarted empty at the source's address
  // (its replica holding the keys now) must not let the slot move without them.
  const id = await conns.call<string>(from.addr, 'CLUSTER', 'MYID');
  if (id !== from.id)
    throw new TiercacheError(
      'UPSTREAM_FAILED',
      `slot ${slot}: ${from.addr} is no longer ${from.id} (it answers as ${id}); not moving the slot`,
    );
  await assignSlot(conns, slot, to.id, [to.addr, from.addr, ...opts.otherMasters]);
  return moved;
}

/**
 * Tells each node (in order) that `owner` now owns `slot`. The first (the new owner) must
 * accept: its bumped config epoch makes the change win everywhere through gossip, so the
 * others are informed best-effort — the source may even have turned replica meanwhile.
 */
export async function assignSlot(
  conns: Connections,
  slot: number,
  owner: string,
  nodes: string[],
): Promise<void> {
  const [first, ...rest] = nodes;
  await conns.call(first!, 'CLUSTER', 'SETSLOT', slot, 'NODE', owner);
  await Promise.all(
    rest.map((addr) =>
      conns.call(addr, 'CLUSTER', 'SETSLOT', slot, 'NODE', owner).catch(() => undefined),
    ),
  );
}

/** MIGRATEs every key of the slot from source to target until the source has none left; returns how many moved. */
export async function moveKeys(
  conns: Connections,
  { slot, from, to }: SlotMove,
  opts: MigrateOptions,
): Promise<number> {
  const { host, port } = parseAddr(to.addr);
  let batch = opts.batch;
  let timeoutMs = opts.migrateTimeoutMs;
  let replace = false;
  let moved = 0;
  let failures = 0;
  for (;;) {
    const keys = await conns.call<string[]>(from.addr, 'CLUSTER', 'GETKEYSINSLOT', slot, batch);
    if (keys.length === 0) return moved;
    const args: (string | number)[] = ['MIGRATE', host, port, '', 0, timeoutMs];
    if (replace) args.push('REPLACE');
    if (opts.password) args.push('AUTH', opts.password);
    args.push('KEYS', ...keys);
    try {
      await conns.call(from.addr, ...args);
      moved += keys.length;
      opts.onKeys?.(keys.length);
      failures = 0;
      // A short batch looks like the slot's last: confirm with COUNTKEYSINSLOT (one round
      // trip instead of an empty GETKEYSINSLOT followed by the same check).
      if (
        keys.length < batch &&
        (await conns.call<number>(from.addr, 'CLUSTER', 'COUNTKEYSINSLOT', slot)) === 0
      )
        return moved;
    } catch (err) {
      const msg = (err as Error).message;
      failures += 1;
      if (failures > MAX_ATTEMPTS) throw err;
      if (/BUSYKEY/.test(msg)) {
        // The target already has some of these keys (written there while importing): the
        // source's copy is what clients last wrote through the owner, so it wins.
        replace = true;
      } else if (/IOERR|timeout|timed out/i.test(msg)) {
        timeoutMs = Math.min(timeoutMs * 2, 120_000);
        batch = Math.max(1, Math.floor(batch / 2));
      } else if (/TRYAGAIN/.test(msg)) {
        await new Promise((r) => setTimeout(r, 50));
      } else {
        throw err;
      }
    }
  }
}
