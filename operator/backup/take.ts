/**
 * Taking a backup of a running cluster: every shard's snapshot at once, each from an in-sync
 * replica (sources.ts) that has caught up with its master, streamed and checked (snapshot.ts), read back key by key to count and
 * prove it restorable, then the manifest; then retention. Writes happen while it runs: each
 * shard's file is that shard at its own fork moment (a cache needs no cross-shard instant).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TiercacheError } from '../../lib/errors.ts';
import type { RedisTls } from '../../lib/redis/tls.ts';
import { checkCluster } from '../redis/check.ts';
import { type Connections, parseInfo } from '../redis/connections.ts';
import { observe } from '../redis/observe.ts';
import { until } from '../redis/wait.ts';
import { readRdb, readRdbHeader } from './rdb-reader.ts';
import { fetchSnapshot } from './snapshot.ts';
import { chooseSources, type SnapshotSource } from './sources.ts';
import {
  type BackupManifest,
  type BackupStore,
  pruneScheduled,
  type ShardBackup,
} from './store.ts';

export interface TakeOptions {
  store: BackupStore;
  name: string;
  cluster: string;
  scheduled?: boolean;
  /** Scheduled backups of this cluster to keep (retention runs after a scheduled backup). */
  keep?: number | undefined;
  tls?: RedisTls | undefined;
  log?: (line: string) => void;
}

export interface TakeResult {
  manifest: BackupManifest;
  pruned: string[];
}

const CATCH_UP_MS = 5_000;

/**
 * Waits until the replica has applied everything its master had when the backup started, so
 * a backup holds every write acknowledged before it began. A replica that does not catch up in
 * time is passed over for its master.
 */
async function caughtUpSource(
  conns: Connections,
  source: SnapshotSource,
  log: (line: string) => void,
): Promise<SnapshotSource> {
  if (source.role === 'master') return source;
  const offset = async (addr: string, field: string) =>
    Number(parseInfo(await conns.call<string>(addr, 'INFO', 'replication'))[field] ?? -1);
  const target = await offset(source.masterAddr, 'master_repl_offset');
  try {
    await until(
      `${source.addr} to catch up with its master`,
      async () => (await offset(source.addr, 'slave_repl_offset')) >= target,
      CATCH_UP_MS,
      20,
    );
    return source;
  } catch {
    log(`shard ${source.shard}: replica ${source.addr} lags its master; snapshot from the master`);
    return { ...source, addr: source.masterAddr, role: 'master' };
  }
}

/**
 * Counts the keys of a fetched file, which also proves it readable to the end (its checksum
 * was checked as it streamed in).
 */
function countKeys(file: Buffer): number {
  let keys = 0;
  for (const e of readRdb(file)) if (e.db === 0) keys += 1;
  return keys;
}

export async function takeBackup(
  conns: Connections,
  seeds: string[],
  opts: TakeOptions,
): Promise<TakeResult> {
  const log = opts.log ?? (() => undefined);
  const startedAt = new Date().toISOString();
  // The store first: one that refuses us fails the backup before any node forks.
  const { store } = opts;
  const dir = await store.begin(opts.name);
  let manifest: BackupManifest;
  try {
    manifest = await takeInto(conns, seeds, opts, dir, startedAt, log);
  } catch (err) {
    await store.abort(dir);
    throw err;
  }
  // The backup is stored: retention trouble is reported, and tried again after the next one.
  let pruned: string[] = [];
  if (manifest.scheduled && opts.keep !== undefined) {
    try {
      pruned = await pruneScheduled(store, opts.cluster, opts.keep);
    } catch (err) {
      log(`retention failed (the backup is stored): ${(err as Error).message}`);
    }
  }
  for (const p of pruned) log(`retention: deleted the scheduled backup ${p}`);
  return { manifest, pruned };
}

async function takeInto(
  conns: Connections,
  seeds: string[],
  opts: TakeOptions,
  dir: string,
  startedAt: string,
  log: (line: string) => void,
): Promise<BackupManifest> {
  const { store } = opts;
  const view = await observe(conns, seeds);
  const check = checkCluster(view);
  const sources = chooseSources(view);
  if (sources.length === 0 || check.uncovered.length > 0)
    throw new TiercacheError(
      'L2_UNAVAILABLE',
      `cannot back up: ${check.problems[0] ?? 'no master holds slots'}`,
    );
  const shards = await Promise.all(
    sources.map(async (chosen): Promise<ShardBackup> => {
      const s = await caughtUpSource(conns, chosen, log);
      const file = `shard-${s.shard}.rdb`;
      log(`shard ${s.shard} (slots ${s.slots}): snapshot from the ${s.role} ${s.addr}`);
      const { bytes } = await fetchSnapshot(s.addr, join(dir, file), {
        // As the manager signs in itself.
        username: conns.opts.username,
        password: conns.opts.password,
        tls: opts.tls,
      });
      const content = await readFile(join(dir, file));
      const keys = countKeys(content);
      log(`shard ${s.shard}: ${keys} keys, ${bytes} bytes`);
      return {
        file,
        source: s.addr,
        role: s.role,
        slots: s.slots,
        keys,
        bytes,
        rdbVersion: readRdbHeader(content).version,
      };
    }),
  );
  const server = await conns.call<string>(sources[0]!.addr, 'INFO', 'server');
  const manifest: BackupManifest = {
    format: 1,
    name: opts.name,
    cluster: opts.cluster,
    scheduled: opts.scheduled ?? false,
    startedAt,
    completedAt: new Date().toISOString(),
    redisVersion:
      /valkey_version:(\S+)/.exec(server)?.[1] ??
      /redis_version:(\S+)/.exec(server)?.[1] ??
      'unknown',
    keys: shards.reduce((n, s) => n + s.keys, 0),
    bytes: shards.reduce((n, s) => n + s.bytes, 0),
    shards,
  };
  await store.complete(dir, manifest);
  log(`backup ${opts.name} stored in ${store.where}`);
  return manifest;
}
