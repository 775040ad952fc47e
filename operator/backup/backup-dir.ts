/**
 * Where backups live: one directory per backup under a root (a mounted volume), holding one
 * RDB file per shard and a manifest written last. A directory without a manifest is not a
 * backup; a backup is written under a hidden name and renamed into place when complete, so a
 * crash never leaves something that looks whole.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TiercacheError } from '../../lib/errors.ts';

export interface ShardBackup {
  /** The file under the backup's directory. */
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

const MANIFEST = 'manifest.json';
/** Backup names become directory names: DNS-1123 labels, as Kubernetes object names. */
const NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

export function checkBackupName(name: string): void {
  if (!NAME.test(name))
    throw new TiercacheError(
      'BAD_REQUEST',
      `backup name "${name}" must be lower-case letters, digits, '-' or '.' (a Kubernetes object name)`,
    );
}

export const backupDir = (root: string, name: string) => join(root, name);
export const partialDir = (root: string, name: string) => join(root, `.${name}.partial`);

/** A fresh hidden directory to write a backup into. */
export async function startBackupDir(root: string, name: string): Promise<string> {
  checkBackupName(name);
  const existing = await readManifest(root, name).catch(() => undefined);
  if (existing)
    throw new TiercacheError('BAD_REQUEST', `a backup named ${name} already exists in ${root}`);
  const dir = partialDir(root, name);
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  return dir;
}

/** Writes the manifest and moves the backup into place. */
export async function completeBackupDir(root: string, manifest: BackupManifest): Promise<void> {
  const dir = partialDir(root, manifest.name);
  await writeFile(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
  const final = backupDir(root, manifest.name);
  await rm(final, { recursive: true, force: true }); // a manifest-less leftover of a crash
  await rename(dir, final);
}

export async function readManifest(root: string, name: string): Promise<BackupManifest> {
  checkBackupName(name);
  let text: string;
  try {
    text = await readFile(join(backupDir(root, name), MANIFEST), 'utf8');
  } catch {
    throw new TiercacheError('NOT_FOUND', `no complete backup named ${name} in ${root}`);
  }
  const manifest = JSON.parse(text) as BackupManifest;
  if (manifest.format !== 1 || !Array.isArray(manifest.shards))
    throw new TiercacheError('BACKUP_INVALID', `${name}: manifest of an unknown format`);
  return manifest;
}

export async function listBackups(root: string): Promise<BackupManifest[]> {
  const names = (await readdir(root, { withFileTypes: true }).catch(() => []))
    .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
    .map((d) => d.name);
  const found = await Promise.all(names.map((n) => readManifest(root, n).catch(() => undefined)));
  return found.filter((m): m is BackupManifest => m !== undefined);
}

/**
 * Retention by count: keeps the `keep` newest scheduled backups of `cluster` and deletes the
 * older ones. Backups taken on demand are the user's to delete. Returns the names deleted.
 */
export async function pruneScheduled(
  root: string,
  cluster: string,
  keep: number,
): Promise<string[]> {
  const scheduled = (await listBackups(root))
    .filter((m) => m.scheduled && m.cluster === cluster)
    .sort((a, b) => b.completedAt.localeCompare(a.completedAt));
  const old = scheduled.slice(keep).map((m) => m.name);
  for (const name of old) await rm(backupDir(root, name), { recursive: true, force: true });
  return old;
}
