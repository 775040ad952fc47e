/**
 * Restoring a backup into a running cluster of any shape: each shard file's keys are RESTOREd
 * (value bytes as stored, absolute expiry) on the master that owns their slot now, in
 * pipelines per master. A key that already exists is left alone (what the cluster holds is
 * newer than the backup), a key whose TTL has run out is not restored, and a key whose slot
 * moved meanwhile (MOVED/ASK) is retried after the slot map is read again.
 */
import { readFile } from 'node:fs/promises';
import { TiercacheError } from '../../lib/errors.ts';
import { keySlot } from '../../lib/redis/key-slot.ts';
import { SLOTS, slotsOf } from '../../lib/redis/topology.ts';
import { withTimeout } from '../../lib/timeout.ts';
import type { Connections } from '../redis/connections.ts';
import { observe, self } from '../redis/observe.ts';
import {
  dumpPayload,
  type RdbEntry,
  readRdb,
  readRdbHeader,
  verifyRdbChecksum,
} from './rdb-reader.ts';
import type { BackupStore } from './store.ts';

export interface RestoreOptions {
  store: BackupStore;
  name: string;
  /** Called after every batch with the keys dealt with so far. */
  progress?: (done: number, total: number) => void;
  log?: (line: string) => void;
  /** RESTOREs per pipeline. */
  batch?: number;
  signal?: AbortSignal;
}

export interface RestoreResult {
  /** Keys in the backup (database 0). */
  total: number;
  restored: number;
  /** Already in the cluster: kept as they are. */
  existing: number;
  /** Expired between the backup and now. */
  expired: number;
  /** In another database than 0, which a cluster does not have. */
  otherDatabases: number;
  seconds: number;
}

interface Pending {
  entry: RdbEntry;
  payload: Buffer;
}

const MAX_ROUNDS = 10;

async function slotOwners(conns: Connections, seeds: string[]): Promise<string[]> {
  const view = await observe(conns, seeds);
  const owners = new Array<string>(SLOTS);
  for (const r of view.reports) {
    const me = self(r);
    if (me.flags.has('master')) for (const s of slotsOf(me.slots)) owners[s] = r.addr;
  }
  return owners;
}

export async function restoreBackup(
  conns: Connections,
  seeds: string[],
  opts: RestoreOptions,
): Promise<RestoreResult> {
  const started = performance.now();
  const log = opts.log ?? (() => undefined);
  const manifest = await opts.store.manifest(opts.name);
  const result: RestoreResult = {
    total: manifest.keys,
    restored: 0,
    existing: 0,
    expired: 0,
    otherDatabases: 0,
    seconds: 0,
  };
  let owners = await slotOwners(conns, seeds);
  const done = () => result.restored + result.existing + result.expired;

  /** RESTOREs a batch; returns the entries to try again (their slot moved). */
  const send = async (batch: Pending[]): Promise<Pending[]> => {
    const byOwner = new Map<string, Pending[]>();
    const retry: Pending[] = [];
    for (const p of batch) {
      const owner = owners[keySlot(p.entry.key)];
      if (!owner) {
        retry.push(p);
        continue;
      }
      const list = byOwner.get(owner);
      if (list) list.push(p);
      else byOwner.set(owner, [p]);
    }
    await Promise.all(
      [...byOwner].map(async ([addr, items]) => {
        const pipeline = conns.client(addr).pipeline();
        for (const { entry, payload } of items) {
          if (entry.expiresAtMs === undefined) pipeline.restore(entry.key, 0, payload);
          else pipeline.restore(entry.key, entry.expiresAtMs, payload, 'ABSTTL');
        }
        const replies = await withTimeout(
          pipeline.exec(),
          conns.opts.timeoutMs * 4,
          `RESTORE of ${items.length} keys on ${addr}`,
        );
        if (!replies) throw new TiercacheError('L2_UNAVAILABLE', `${addr}: pipeline refused`);
        replies.forEach(([err], i) => {
          const message = err?.message ?? '';
          if (!err) result.restored += 1;
          else if (message.startsWith('BUSYKEY')) result.existing += 1;
          else if (/^(MOVED|ASK|TRYAGAIN|CLUSTERDOWN)/.test(message)) retry.push(items[i]!);
          else
            throw new TiercacheError('L2_UNAVAILABLE', `RESTORE on ${addr}: ${message}`, { addr });
        });
      }),
    );
    return retry;
  };

  const batchSize = opts.batch ?? 500;
  let retry: Pending[] = [];
  const restoreFile = async (path: string, shard: (typeof manifest.shards)[number]) => {
    const file = await readFile(path);
    const { version } = readRdbHeader(file);
    log(`restoring ${shard.file}: ${shard.keys} keys (slots ${shard.slots} at backup time)`);
    let batch: Pending[] = [];
    const now = Date.now();
    for (const entry of readRdb(file)) {
      if (opts.signal?.aborted)
        throw new TiercacheError('CANCELLED', `restore of ${opts.name} stopped`);
      if (entry.db !== 0) {
        result.otherDatabases += 1;
        continue;
      }
      if (entry.expiresAtMs !== undefined && entry.expiresAtMs <= now) {
        result.expired += 1;
        continue;
      }
      batch.push({ entry, payload: dumpPayload(entry, version) });
      if (batch.length >= batchSize) {
        retry.push(...(await send(batch)));
        batch = [];
        opts.progress?.(done(), result.total);
      }
    }
    retry.push(...(await send(batch)));
    opts.progress?.(done(), result.total);
  };

  // Every file is fetched and checked whole before the first key is written: a damaged
  // backup restores nothing rather than part of itself.
  const files: { path: string; close(): Promise<void> }[] = [];
  try {
    for (const shard of manifest.shards) {
      const local = await opts.store.open(opts.name, shard.file);
      files.push(local);
      const file = await readFile(local.path);
      verifyRdbChecksum(file);
      for (const _ of readRdb(file));
    }
    for (const [i, shard] of manifest.shards.entries()) await restoreFile(files[i]!.path, shard);
  } finally {
    for (const f of files) await f.close();
  }
  for (let round = 1; retry.length > 0; round++) {
    if (round > MAX_ROUNDS)
      throw new TiercacheError(
        'L2_UNAVAILABLE',
        `${retry.length} keys could not be restored: their slots kept moving or had no owner`,
      );
    await new Promise((r) => setTimeout(r, 200 * round));
    owners = await slotOwners(conns, seeds);
    retry = await send(retry);
  }
  opts.progress?.(done(), result.total);
  result.seconds = (performance.now() - started) / 1000;
  return result;
}
