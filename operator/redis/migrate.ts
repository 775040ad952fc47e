/**
 * Moving one slot with its keys, the safe way: IMPORTING on the target, MIGRATING on the
 * source, MIGRATE … KEYS in batches until the source has no key left in the slot, and only
 * then SETSLOT NODE — on the target first, then the source, then every other master.
 * Ownership never moves while COUNTKEYSINSLOT is non-zero. BUSYKEY, TRYAGAIN and timeouts
 * (big keys) are retried; a slot that fails before any key reached the target is closed
 * again, and a crash mid-way leaves an open slot that `fix` finishes.
 */
import { TiercacheError } from '../../lib/errors.ts';
import { parseAddr } from '../../lib/redis/addr.ts';
import { batchesByBytes } from './batches.ts';
import type { Connections } from './connections.ts';

export interface SlotMove {
  slot: number;
  from: { id: string; addr: string };
  to: { id: string; addr: string };
}

export interface MigrateOptions {
  /** Keys asked for at a time (GETKEYSINSLOT). */
  batch: number;
  /** Bytes per MIGRATE call at most (batches.ts); a bigger key moves alone. */
  batchBytes: number;
  /** MIGRATE's own timeout (ms); doubled on each timeout, for big keys. */
  migrateTimeoutMs: number;
  /** Masters that must learn the new owner as well (besides source and target). */
  otherMasters: string[];
  onKeys?: (n: number) => void;
}

const MAX_ATTEMPTS = 20;
const MAX_MIGRATE_TIMEOUT_MS = 120_000;
/** Default bytes per MIGRATE call: a few cached images, or thousands of JSON entries. */
export const DEFAULT_BATCH_BYTES = 8 * 1024 * 1024;

export async function migrateSlot(
  conns: Connections,
  move: SlotMove,
  opts: MigrateOptions,
): Promise<number> {
  const { slot, from, to } = move;
  await conns.call(to.addr, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', from.id);
  await conns.call(from.addr, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id);
  // moveKeys returns only once the source has no key left in the slot.
  let moved: number;
  try {
    moved = await moveKeys(conns, move, opts);
  } catch (err) {
    await abandon(conns, move).catch(() => undefined);
    throw err;
  }
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
 * Undoes a migration that failed before any key reached the target, so a failed rebalance
 * leaves no slot open: the source stops redirecting (ASK) first, then the target, if it holds
 * nothing of the slot, stops importing. A target with keys keeps the slot open for `fix`,
 * which finishes the move forward.
 */
async function abandon(conns: Connections, { slot, from, to }: SlotMove): Promise<void> {
  await conns.call(from.addr, 'CLUSTER', 'SETSLOT', slot, 'STABLE');
  if ((await conns.call<number>(to.addr, 'CLUSTER', 'COUNTKEYSINSLOT', slot)) === 0) {
    await conns.call(to.addr, 'CLUSTER', 'SETSLOT', slot, 'STABLE');
    return;
  }
  await conns.call(from.addr, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', to.id);
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
  let maxBytes = opts.batchBytes;
  let timeoutMs = opts.migrateTimeoutMs;
  let replace = false;
  let moved = 0;
  let failures = 0;
  for (;;) {
    const keys = await conns.call<string[]>(from.addr, 'CLUSTER', 'GETKEYSINSLOT', slot, batch);
    if (keys.length === 0) return moved;
    const sizes = await keySizes(conns, from.addr, keys);
    try {
      for (const part of batchesByBytes(keys, sizes, maxBytes)) {
        const args: (string | number)[] = ['MIGRATE', host, port, '', 0, timeoutMs];
        if (replace) args.push('REPLACE');
        // To the target as the manager signs in itself (AUTH2 names the user, AUTH is default's).
        const { username, password } = conns.opts;
        if (password)
          args.push(
            ...(username && username !== 'default'
              ? ['AUTH2', username, password]
              : ['AUTH', password]),
          );
        args.push('KEYS', ...part);
        // Redis's timeout bounds each I/O to the target; ours bounds the whole call, and it
        // must outlast Redis's, or a slow batch would be retried while it is still running.
        await conns.callWithin(timeoutMs + conns.opts.timeoutMs, from.addr, ...args);
        moved += part.length;
        opts.onKeys?.(part.length);
      }
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
        timeoutMs = Math.min(timeoutMs * 2, MAX_MIGRATE_TIMEOUT_MS);
        batch = Math.max(1, Math.floor(batch / 2));
        maxBytes = Math.max(1, Math.floor(maxBytes / 2));
      } else if (/TRYAGAIN/.test(msg)) {
        await new Promise((r) => setTimeout(r, 50));
      } else {
        throw err;
      }
    }
  }
}

/** `MEMORY USAGE` of every key it is given, 0 for one that is gone; read-only, so allowed when full. */
const KEY_SIZES_SCRIPT = `#!lua flags=no-writes
local sizes = {}
for i, key in ipairs(KEYS) do sizes[i] = redis.call('MEMORY', 'USAGE', key) or 0 end
return sizes`;

/**
 * Bytes each key takes on the node. One script call rather than a MEMORY USAGE per key: for
 * small keys the cost per command (a timer and a promise here, a dispatch there) was most of
 * the migration's time. A key deleted since GETKEYSINSLOT makes a migrating slot refuse the
 * script (TRYAGAIN): then one MEMORY USAGE per key.
 */
async function keySizes(conns: Connections, addr: string, keys: string[]): Promise<number[]> {
  if (keys.length === 1) return [0]; // alone in its batch whatever its size
  try {
    return await conns.call<number[]>(addr, 'EVAL', KEY_SIZES_SCRIPT, keys.length, ...keys);
  } catch {
    const sizes = await Promise.all(
      keys.map((k) => conns.call<number | null>(addr, 'MEMORY', 'USAGE', k)),
    );
    return sizes.map((n) => n ?? 0);
  }
}
