/**
 * Backups in a directory (the backup claim, mounted): <root>/<backup>/shard-<i>.rdb and
 * manifest.json. A backup is written under a hidden name and renamed into place once its
 * manifest is written.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import {
  type BackupManifest,
  type BackupStore,
  checkBackupName,
  MANIFEST,
  manifestsOf,
  noBackup,
  parseManifest,
  refuseExisting,
} from './store.ts';

export class DirStore implements BackupStore {
  readonly root: string;
  readonly where: string;

  constructor(root: string) {
    this.root = root;
    this.where = root;
  }

  async begin(name: string): Promise<string> {
    await refuseExisting(this, name);
    const dir = join(this.root, `.${name}.partial`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    return dir;
  }

  async complete(dir: string, manifest: BackupManifest): Promise<void> {
    if (basename(dir) !== `.${manifest.name}.partial` || dirname(dir) !== this.root)
      throw new Error(`${dir} is not where ${manifest.name} was begun`);
    await writeFile(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
    const final = join(this.root, manifest.name);
    await rm(final, { recursive: true, force: true }); // a manifest-less leftover of a crash
    await rename(dir, final);
  }

  async abort(dir: string): Promise<void> {
    await rm(dir, { recursive: true, force: true });
  }

  async manifest(name: string): Promise<BackupManifest> {
    checkBackupName(name);
    let text: string;
    try {
      text = await readFile(join(this.root, name, MANIFEST), 'utf8');
    } catch {
      throw noBackup(name, this.where);
    }
    return parseManifest(name, text);
  }

  async list(): Promise<BackupManifest[]> {
    const names = (await readdir(this.root, { withFileTypes: true }).catch(() => []))
      .filter((d) => d.isDirectory() && !d.name.startsWith('.'))
      .map((d) => d.name);
    return manifestsOf(this, names);
  }

  async remove(name: string): Promise<void> {
    checkBackupName(name);
    await rm(join(this.root, name), { recursive: true, force: true });
  }

  async open(name: string, file: string): Promise<{ path: string; close(): Promise<void> }> {
    checkBackupName(name);
    return { path: join(this.root, name, basename(file)), close: async () => undefined };
  }
}
