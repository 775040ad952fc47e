/**
 * Backup and restore of a running cluster, persistence off (the CRD default) and on: a 3-shard
 * cluster with replicas holds 50 000 keys (a quarter with TTLs) plus a hash, a list and a
 * sorted set, and a writer keeps writing while `tiercache cluster backup` takes every shard's
 * snapshot from a replica. The backup is restored into a 4-shard cluster: every key is back
 * with its value and its TTL, and so is every write acknowledged before the backup began (the
 * replicas are caught up first). Writes acknowledged after it began may or may not be in it.
 * A damaged backup restores nothing; restoring twice keeps what is there; retention keeps the
 * newest scheduled backups and leaves backups taken on demand alone. Each in a directory and in
 * an S3-compatible bucket (versitygw, a real S3 server with SigV4, on loopback).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DirStore } from '../../operator/backup/dir-store.ts';
import { restoreBackup } from '../../operator/backup/restore.ts';
import { S3Store } from '../../operator/backup/s3-store.ts';
import type { BackupStore } from '../../operator/backup/store.ts';
import { takeBackup } from '../../operator/backup/take.ts';
import { Connections } from '../../operator/redis/connections.ts';
import { createCluster } from '../../operator/redis/create.ts';
import { runCli } from '../helpers/proxy.ts';
import { fill, missing, type RedisNode, startNodes } from '../helpers/redis.ts';
import { startS3 } from '../helpers/s3.ts';
import { waitFor } from '../helpers/wait.ts';

const KEYS = 50_000;
const WRITERS = 5;
const HOUR_MS = 3_600_000;
const addr = (n: RedisNode) => `${n.host}:${n.port}`;

/** Writers each writing their own sequence of keys; `acked()` says how many each had acknowledged. */
function writers(client: Cluster) {
  let running = true;
  const acked = new Array<number>(WRITERS).fill(0);
  let failures = 0;
  const loops = acked.map(async (_, w) => {
    while (running) {
      try {
        await client.set(`w:${w}:${acked[w]}`, 'x');
        acked[w]! += 1;
      } catch {
        failures += 1;
      }
    }
  });
  return {
    acked: () => [...acked],
    async stop() {
      running = false;
      await Promise.all(loops);
      return { acked: [...acked], failures };
    },
  };
}

/** Where the backups go, as the library and the CLI are told. */
interface Place {
  store: BackupStore;
  cli: string[];
  env: Record<string, string>;
  stop(): Promise<void>;
}

async function placeFor(kind: 'dir' | 's3'): Promise<Place> {
  if (kind === 'dir') {
    const root = mkdtempSync(join(tmpdir(), 'tiercache-backups-'));
    return {
      store: new DirStore(root),
      cli: ['--dir', root],
      env: {},
      stop: async () => rmSync(root, { recursive: true, force: true }),
    };
  }
  const s3 = await startS3();
  Object.assign(process.env, s3.env); // the in-process S3Store reads them as the CLI does
  return {
    store: new S3Store({ bucket: s3.bucket, prefix: 'test/cache', endpoint: s3.endpoint }),
    cli: ['--s3-bucket', s3.bucket, '--s3-prefix', 'test/cache', '--s3-endpoint', s3.endpoint],
    env: s3.env,
    stop: s3.stop,
  };
}

/** A copy of backup `from` named `to` whose shard 2 has one byte flipped, made through the store. */
async function damagedCopy(store: BackupStore, from: string, to: string): Promise<void> {
  const manifest = await store.manifest(from);
  const dir = await store.begin(to);
  for (const shard of manifest.shards) {
    const local = await store.open(from, shard.file);
    const bytes = readFileSync(local.path);
    if (shard.file === 'shard-2.rdb') bytes[bytes.length >> 1]! ^= 0xff;
    writeFileSync(join(dir, shard.file), bytes);
    await local.close();
  }
  await store.complete(dir, { ...manifest, name: to });
}

describe.each([
  { persist: false, kind: 'dir' },
  { persist: true, kind: 'dir' },
  { persist: false, kind: 's3' },
  { persist: true, kind: 's3' },
] as const)('backup and restore to $kind, persistence $persist', ({ persist, kind }) => {
  let source: RedisNode[];
  let target: RedisNode[];
  let conns: Connections;
  let src: Cluster;
  let dst: Cluster;
  let place: Place;
  let ackedBefore: number[];

  beforeAll(async () => {
    place = await placeFor(kind);
    // No wait for more replicas before a snapshot is streamed (the operator's nodes wait 1 s).
    const config = 'repl-diskless-sync-delay 0\n';
    [source, target] = await Promise.all([
      startNodes(6, { cluster: true, persist, config }),
      startNodes(4, { cluster: true, persist, config }),
    ]);
    conns = new Connections({ timeoutMs: 5000 });
    await Promise.all([
      createCluster(conns, source.map(addr), { replicas: 1 }),
      createCluster(conns, target.map(addr), { replicas: 0 }),
    ]);
    src = new Cluster([{ host: source[0]!.host, port: source[0]!.port }], {
      enableAutoPipelining: true,
    });
    dst = new Cluster([{ host: target[0]!.host, port: target[0]!.port }], {
      enableAutoPipelining: true,
    });
    src.on('error', () => {});
    dst.on('error', () => {});
    await fill(src, KEYS);
    await Promise.all(
      Array.from({ length: KEYS / 4 }, (_, i) => src.pexpire(`k:${i * 4}`, HOUR_MS)),
    );
    await src.hset('h', 'a', '1', 'b', '2');
    await src.rpush('l', 'x', 'y', 'z');
    await src.zadd('z', 1, 'one', 2, 'two');

    const writing = writers(src);
    await waitFor('the writers to be under way', () => writing.acked().every((n) => n >= 20));
    ackedBefore = writing.acked();
    const backup = await runCli(
      [
        'cluster',
        'backup',
        addr(source[0]!),
        ...place.cli,
        '--name',
        'b1',
        '--cluster',
        'test/cache',
      ],
      place.env,
    );
    expect(backup.output).toMatch(/backup b1: \d+ keys/);
    expect(backup.code).toBe(0);
    const written = await writing.stop();
    expect(written.failures).toBe(0);
  }, 120_000);

  afterAll(async () => {
    src?.disconnect();
    dst?.disconnect();
    conns?.close();
    await Promise.all([...(source ?? []), ...(target ?? [])].map((n) => n.stop()));
    await place?.stop();
  });

  it('takes every shard from an in-sync replica and counts its keys', async () => {
    const m = await place.store.manifest('b1');
    expect(m.shards).toHaveLength(3);
    expect(m.shards.every((s) => s.role === 'replica')).toBe(true);
    expect(m.cluster).toBe('test/cache');
    const acked = ackedBefore.reduce((a, b) => a + b, 0);
    expect(m.keys).toBeGreaterThanOrEqual(KEYS + 3 + acked);
    expect(m.bytes).toBeGreaterThan(0);
  });

  it('a damaged backup restores nothing', async () => {
    await damagedCopy(place.store, 'b1', 'bad');
    await expect(
      restoreBackup(conns, [addr(target[0]!)], { store: place.store, name: 'bad' }),
    ).rejects.toThrow(/checksum does not match/);
    const sizes = await Promise.all(target.map((n) => conns.call<number>(addr(n), 'DBSIZE')));
    expect(sizes).toEqual([0, 0, 0, 0]);
    await place.store.remove('bad');
    await expect(place.store.manifest('bad')).rejects.toThrow(/no complete backup named bad/);
  });

  it('restores into 4 shards every key with its value and TTL, and every write acknowledged before the backup', async () => {
    const m = await place.store.manifest('b1');
    const seen: number[] = [];
    const r = await restoreBackup(conns, [addr(target[0]!)], {
      store: place.store,
      name: 'b1',
      progress: (done) => seen.push(done),
    });
    expect(r).toMatchObject({ total: m.keys, restored: m.keys, existing: 0, expired: 0 });
    expect(seen.at(-1)).toBe(m.keys);
    const sizes = await Promise.all(target.map((n) => conns.call<number>(addr(n), 'DBSIZE')));
    expect(sizes.every((s) => s > 0)).toBe(true); // spread over all four shards
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(m.keys);

    expect(await missing(dst, KEYS)).toBe(0);
    const ttls = await Promise.all(
      Array.from({ length: KEYS / 4 }, (_, i) => dst.pttl(`k:${i * 4}`)),
    );
    expect(ttls.filter((t) => t <= 0 || t > HOUR_MS)).toEqual([]);
    const none = await Promise.all(
      Array.from({ length: 1000 }, (_, i) => dst.pttl(`k:${i * 4 + 1}`)),
    );
    expect(new Set(none)).toEqual(new Set([-1]));
    expect(await dst.hgetall('h')).toEqual({ a: '1', b: '2' });
    expect(await dst.lrange('l', 0, -1)).toEqual(['x', 'y', 'z']);
    expect(await dst.zrange('z', '0', '-1', 'WITHSCORES')).toEqual(['one', '1', 'two', '2']);
    for (const [w, n] of ackedBefore.entries()) {
      const got = await Promise.all(Array.from({ length: n }, (_, i) => dst.exists(`w:${w}:${i}`)));
      expect(
        got.filter((e) => e !== 1).length,
        `writer ${w}: acknowledged before the backup, missing`,
      ).toBe(0);
    }
  });

  it('restoring again keeps every key that is there', async () => {
    await dst.set('k:1', 'newer');
    const again = await runCli(
      ['cluster', 'restore', addr(target[1]!), ...place.cli, '--name', 'b1'],
      place.env,
    );
    expect(again.output).toMatch(/restored 0 of \d+ keys .*\((\d+) already there/);
    expect(again.code).toBe(0);
    expect(await dst.get('k:1')).toBe('newer');
  });

  it('keeps the newest scheduled backups of a cluster and every backup taken on demand', async () => {
    for (const name of ['s1', 's2', 's3']) {
      await takeBackup(conns, [addr(source[1]!)], {
        store: place.store,
        name,
        cluster: 'test/cache',
        scheduled: true,
        keep: 2,
      });
    }
    expect((await place.store.list()).map((b) => b.name).sort()).toEqual(['b1', 's2', 's3']);
  });
});

describe('backups refused before any node is touched', () => {
  it('a bucket that refuses the credentials fails the backup at once, naming the bucket', async () => {
    const s3 = await startS3();
    try {
      const wrong = { ...s3.env, AWS_SECRET_ACCESS_KEY: 'not-the-secret' };
      const args = ['--s3-bucket', s3.bucket, '--s3-endpoint', s3.endpoint, '--name', 'b1'];
      // No node listens on port 1: the bucket's refusal comes first.
      const r = await runCli(['cluster', 'backup', '127.0.0.1:1', ...args], wrong);
      expect(r.code).not.toBe(0);
      expect(r.output).toMatch(/s3:\/\/backups\/: .*(signature|Access|denied|credential)/i);
      expect(r.output).not.toMatch(/127\.0\.0\.1:1/);
      expect(r.output).not.toContain('not-the-secret');
    } finally {
      await s3.stop();
    }
  });

  it('bad options name what is wrong', async () => {
    const cases: [string[], RegExp][] = [
      [['--name', 'b1'], /need one of --dir and --s3-bucket/],
      [['--dir', '/tmp', '--s3-bucket', 'b', '--name', 'b1'], /need one of --dir and --s3-bucket/],
      [['--dir', '/tmp', '--s3-prefix', 'p', '--name', 'b1'], /--s3-prefix needs --s3-bucket/],
      [
        ['--s3-bucket', 'b', '--s3-endpoint', 'minio:9000', '--name', 'b1'],
        /--s3-endpoint must be an http\(s\) URL/,
      ],
      [['--dir', '/tmp'], /need --name/],
      [['--dir', '/tmp', '--name', 'Not_A_Name'], /backup name "Not_A_Name" must be lower-case/],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(['cluster', 'backup', '127.0.0.1:1', ...args], {});
      expect(r.output, args.join(' ')).toMatch(message);
      expect(r.code, args.join(' ')).not.toBe(0);
    }
  });
});
