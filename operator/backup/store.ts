/**
 * Where backups live, behind one interface: a directory (a mounted claim, dir-store.ts) or an
 * S3-compatible bucket (s3-store.ts). A backup is one RDB file per shard plus a manifest,
 * stored last: whatever has no manifest is not a backup, so a crash never leaves something
 * that looks whole.
 */
import { TiercacheError } from '../../lib/errors.ts';

export interface ShardBackup {
  /** The file's name within the backup. */
  file: string;
  /** The node the snapshot came from, and whether it was a replica (the rule) or the master. */
  source: string;
  role: 'replica' | 'master';
  slots: string;
  keys: number;
  bytes: number;
  rdbVersion: number;
}

export interface BackupManifest {
  format: 1;
  name: string;
  /** The CacheCluster (namespace/name) or whatever the caller names the cluster. */
  cluster: string;
  scheduled: boolean;
  startedAt: string;
  completedAt: string;
  redisVersion: string;
  keys: number;
  bytes: number;
  shards: ShardBackup[];
}

export interface BackupStore {
  /** Where it is, for messages: a directory, or s3://bucket/prefix. */
  readonly where: string;
  /** A local directory for the shard files of a new backup `name` (refused if it exists). */
  begin(name: string): Promise<string>;
  /** Stores the files written into `dir`, then the manifest. */
  complete(dir: string, manifest: BackupManifest): Promise<void>;
  /** Drops what `begin` made, for a backup that failed. */
  abort(dir: string): Promise<void>;
  /** A complete backup's manifest (NOT_FOUND when there is none). */
  manifest(name: string): Promise<BackupManifest>;
  /** Every complete backup. */
  list(): Promise<BackupManifest[]>;
  remove(name: string): Promise<void>;
  /** A local copy of one file of a backup, and how to drop it. */
  open(name: string, file: string): Promise<{ path: string; close(): Promise<void> }>;
}

export const MANIFEST = 'manifest.json';
/** Backup names become directory names: DNS-1123 names, as Kubernetes object names. */
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export function checkBackupName(name: string): void {
  if (!NAME.test(name))
    throw new TiercacheError(
      'BAD_REQUEST',
      `backup name "${name}" must be lower-case letters, digits, '-' or '.' (a Kubernetes object name)`,
    );
}

export function parseManifest(name: string, text: string): BackupManifest {
  let manifest: BackupManifest;
  try {
    manifest = JSON.parse(text) as BackupManifest;
  } catch {
    throw new TiercacheError('BACKUP_INVALID', `${name}: the manifest is not JSON`);
  }
  if (manifest.format !== 1 || !Array.isArray(manifest.shards))
    throw new TiercacheError('BACKUP_INVALID', `${name}: manifest of an unknown format`);
  return manifest;
}

export const noBackup = (name: string, where: string) =>
  new TiercacheError('NOT_FOUND', `no complete backup named ${name} in ${where}`);

/** Refuses to start a backup whose name is taken by a complete one. */
export async function refuseExisting(store: BackupStore, name: string): Promise<void> {
  checkBackupName(name);
  // Only "no such backup" lets it start: a store that refuses to answer fails the backup now.
  const existing = await store.manifest(name).catch((err: unknown) => {
    if (err instanceof TiercacheError && err.code === 'NOT_FOUND') return undefined;
    throw err;
  });
  if (existing)
    throw new TiercacheError(
      'BAD_REQUEST',
      `a backup named ${name} already exists in ${store.where}`,
    );
}

/** The complete backups among `names` (a name without a readable manifest is left out). */
export async function manifestsOf(store: BackupStore, names: string[]): Promise<BackupManifest[]> {
  const found = await Promise.all(names.map((n) => store.manifest(n).catch(() => undefined)));
  return found.filter((m): m is BackupManifest => m !== undefined);
}

/**
 * Retention by count: keeps the `keep` newest scheduled backups of `cluster` and deletes the
 * older ones. Backups taken on demand are the user's to delete. Returns the names deleted.
 */
export async function pruneScheduled(
  store: BackupStore,
  cluster: string,
  keep: number,
): Promise<string[]> {
  const scheduled = (await store.list())
    .filter((m) => m.scheduled && m.cluster === cluster)
    .sort((a, b) => b.completedAt.localeCompare(a.completedAt));
  const old = scheduled.slice(keep).map((m) => m.name);
  for (const name of old) await store.remove(name);
  return old;
}
