/**
 * Backups in an S3-compatible bucket: <prefix>/<backup>/shard-<i>.rdb and manifest.json,
 * the manifest uploaded last. Shard files are written to a local scratch directory first (the
 * snapshot is checked and read back before anything is uploaded) and sent as multipart
 * uploads; a restore downloads one file at a time. Credentials come from the AWS SDK's usual
 * sources (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in a Job).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  NoSuchKey,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { TiercacheError } from '../../lib/errors.ts';
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

export interface S3Location {
  bucket: string;
  /** Key prefix the cluster's backups go under ('' for the bucket's root). */
  prefix: string;
  /** An S3-compatible endpoint (MinIO, Ceph, …); AWS's own when not given. */
  endpoint?: string | undefined;
  region?: string | undefined;
}

const unavailable = (where: string, err: unknown) =>
  new TiercacheError('L2_UNAVAILABLE', `${where}: ${(err as Error).message}`, undefined, err);

export class S3Store implements BackupStore {
  readonly where: string;
  readonly #bucket: string;
  readonly #prefix: string;
  readonly #s3: S3Client;

  constructor(location: S3Location) {
    this.#bucket = location.bucket;
    this.#prefix = location.prefix.replace(/^\/+|\/+$/g, '');
    this.where = `s3://${this.#bucket}/${this.#prefix}`;
    this.#s3 = new S3Client({
      region: location.region || 'us-east-1',
      ...(location.endpoint ? { endpoint: location.endpoint, forcePathStyle: true } : {}),
    });
  }

  #key(name: string, file = ''): string {
    return [this.#prefix, name, file].filter((p) => p !== '').join('/');
  }

  async begin(name: string): Promise<string> {
    await refuseExisting(this, name);
    return mkdtemp(join(tmpdir(), `tiercache-backup-${name}-`));
  }

  async complete(dir: string, manifest: BackupManifest): Promise<void> {
    try {
      for (const file of await readdir(dir)) {
        await new Upload({
          client: this.#s3,
          params: {
            Bucket: this.#bucket,
            Key: this.#key(manifest.name, file),
            Body: createReadStream(join(dir, file)),
          },
        }).done();
      }
      await this.#s3.send(
        new PutObjectCommand({
          Bucket: this.#bucket,
          Key: this.#key(manifest.name, MANIFEST),
          Body: `${JSON.stringify(manifest, null, 2)}\n`,
          ContentType: 'application/json',
        }),
      );
    } catch (err) {
      throw unavailable(this.where, err);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  async abort(dir: string): Promise<void> {
    await rm(dir, { recursive: true, force: true });
  }

  async manifest(name: string): Promise<BackupManifest> {
    checkBackupName(name);
    try {
      const got = await this.#s3.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: this.#key(name, MANIFEST) }),
      );
      return parseManifest(name, await got.Body!.transformToString());
    } catch (err) {
      if (err instanceof NoSuchKey) throw noBackup(name, this.where);
      if (err instanceof TiercacheError) throw err;
      throw unavailable(this.where, err);
    }
  }

  /** Every key under `prefix`, page by page. */
  async #keys(prefix: string, delimiter?: string): Promise<{ keys: string[]; folders: string[] }> {
    const keys: string[] = [];
    const folders: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.#s3
        .send(
          new ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix: prefix,
            ContinuationToken: token,
            ...(delimiter ? { Delimiter: delimiter } : {}),
          }),
        )
        .catch((err) => {
          throw unavailable(this.where, err);
        });
      for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
      for (const p of page.CommonPrefixes ?? []) if (p.Prefix) folders.push(p.Prefix);
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return { keys, folders };
  }

  async list(): Promise<BackupManifest[]> {
    const base = this.#prefix ? `${this.#prefix}/` : '';
    const { folders } = await this.#keys(base, '/');
    const names = folders.map((f) => f.slice(base.length).replace(/\/$/, ''));
    return manifestsOf(this, names);
  }

  async remove(name: string): Promise<void> {
    checkBackupName(name);
    const { keys } = await this.#keys(`${this.#key(name)}/`);
    // The manifest first: a backup half deleted is no longer taken for a whole one.
    const ordered = [
      ...keys.filter((k) => k.endsWith(`/${MANIFEST}`)),
      ...keys.filter((k) => !k.endsWith(`/${MANIFEST}`)),
    ];
    for (let i = 0; i < ordered.length; i += 1000) {
      await this.#s3
        .send(
          new DeleteObjectsCommand({
            Bucket: this.#bucket,
            Delete: { Objects: ordered.slice(i, i + 1000).map((Key) => ({ Key })) },
          }),
        )
        .catch((err) => {
          throw unavailable(this.where, err);
        });
    }
  }

  async open(name: string, file: string): Promise<{ path: string; close(): Promise<void> }> {
    checkBackupName(name);
    const dir = await mkdtemp(join(tmpdir(), `tiercache-restore-${name}-`));
    const path = join(dir, basename(file));
    try {
      const got = await this.#s3.send(
        new GetObjectCommand({ Bucket: this.#bucket, Key: this.#key(name, basename(file)) }),
      );
      await pipeline(got.Body as Readable, createWriteStream(path));
    } catch (err) {
      await rm(dir, { recursive: true, force: true });
      if (err instanceof NoSuchKey)
        throw new TiercacheError(
          'BACKUP_INVALID',
          `${name}: ${file} is missing from ${this.where}`,
        );
      throw unavailable(this.where, err);
    }
    return { path, close: () => rm(dir, { recursive: true, force: true }) };
  }
}
