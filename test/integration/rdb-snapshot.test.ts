/**
 * A node's RDB snapshot over the replication protocol, read key by key and restored elsewhere:
 * every value type and encoding Redis 7 and Valkey 9 write (small and large lists, sets of
 * integers and of strings, sorted sets, hashes, streams with groups and pending entries,
 * compressed strings, integer and binary keys) comes back equal (DEBUG DIGEST-VALUE, which
 * ignores a hash table's order) with its TTL, from a server with persistence off and one with it on. A damaged or cut-short file is
 * refused with BACKUP_INVALID, never half read.
 */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  dumpPayload,
  readRdb,
  readRdbHeader,
  verifyRdbChecksum,
} from '../../operator/backup/rdb-reader.ts';
import { fetchSnapshot } from '../../operator/backup/snapshot.ts';
import { type RedisNode, startRedis } from '../helpers/redis.ts';

/** For DEBUG DIGEST-VALUE. */
const DEBUG = 'enable-debug-command yes\n';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tiercache-rdb-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Keys of every type and encoding; returns their names. */
async function fillEveryType(c: Redis): Promise<Buffer[]> {
  const big = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i));
  await c.set('str:short', 'hello');
  await c.set('str:int', '123456789');
  await c.set('str:long', 'a'.repeat(5000)); // LZF-compressed in the file
  await c.set('12345', 'an integer-encoded key');
  await c.set(Buffer.from([0, 255, 10, 13, 128]), Buffer.from([1, 2, 0, 3]));
  await c.set('ttl:seconds', 'expires', 'EX', 3600);
  await c.set('ttl:ms', 'expires-ms', 'PX', 7_200_123);
  await c.rpush('list:small', 'a', 'b', 'c');
  await c.rpush('list:big', ...big(5000, (i) => `item-${i}-${'x'.repeat(i % 50)}`));
  await c.sadd('set:ints', 1, 2, 3, 40000);
  await c.sadd('set:small', 'a', 'b', 'c');
  await c.sadd('set:big', ...big(1000, (i) => `member-${i}`));
  await c.zadd('zset:small', 1, 'a', 2.5, 'b', -3, 'c');
  await c.zadd('zset:big', ...Array.from({ length: 1000 }, (_, i) => [i / 3, `m-${i}`]).flat());
  await c.hset('hash:small', 'f1', 'v1', 'f2', '2');
  await c.hset(
    'hash:big',
    Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`field-${i}`, 'v'.repeat(i % 80)])),
  );
  for (let i = 0; i < 300; i++)
    await c.xadd('stream', '*', 'n', String(i), 'pad', 'x'.repeat(i % 30));
  await c.xgroup('CREATE', 'stream', 'readers', '0');
  await c.xreadgroup('GROUP', 'readers', 'alice', 'COUNT', 10, 'STREAMS', 'stream', '>');
  await c.xreadgroup('GROUP', 'readers', 'bob', 'COUNT', 5, 'STREAMS', 'stream', '>');
  await c.xgroup('CREATE', 'stream', 'idle', '$');
  await c.pexpire('hash:big', 86_400_000);
  return (await c.keysBuffer('*')).sort(Buffer.compare);
}

describe.each([
  { server: 'redis', persist: false },
  { server: 'redis', persist: true },
  { server: 'valkey', persist: false },
] as const)('RDB snapshot of $server, persistence $persist', ({ server, persist }) => {
  let source: RedisNode;
  let target: RedisNode;
  let keys: Buffer[];
  let file: string;

  beforeAll(async () => {
    [source, target] = await Promise.all([
      startRedis({ server, persist, config: DEBUG }),
      startRedis({ server, persist, config: DEBUG }),
    ]);
    keys = await fillEveryType(source.client());
    file = join(dir, `${server}-${persist}.rdb`);
  });
  afterAll(async () => {
    await Promise.all([source?.stop(), target?.stop()]);
  });

  it('fetches a checked RDB and restores every key with its value and TTL', async () => {
    const { bytes } = await fetchSnapshot(`${source.host}:${source.port}`, file);
    expect(bytes).toBe(statSync(file).size);
    const rdb = readFileSync(file);
    verifyRdbChecksum(rdb);
    const { version } = readRdbHeader(rdb);
    const entries = [...readRdb(rdb)];
    expect(entries.map((e) => e.key).sort(Buffer.compare)).toEqual(keys);

    const src = source.client();
    const dst = target.client();
    for (const e of entries) {
      const args: (string | number | Buffer)[] = [
        e.key,
        e.expiresAtMs ?? 0,
        dumpPayload(e, version),
      ];
      if (e.expiresAtMs !== undefined) args.push('ABSTTL');
      await dst.callBuffer('RESTORE', ...args);
    }
    const digests = (c: Redis) =>
      Promise.all(keys.map((k) => c.call('DEBUG', 'DIGEST-VALUE', k) as Promise<string[]>));
    const [a, b] = await Promise.all([digests(src), digests(dst)]);
    expect(b).toEqual(a);
    expect(new Set(a.flat()).size).toBe(keys.length); // the digests tell the values apart
    for (const key of ['ttl:seconds', 'ttl:ms', 'hash:big']) {
      const [a, b] = await Promise.all([src.pttl(key), dst.pttl(key)]);
      expect(b).toBeGreaterThan(0);
      expect(Math.abs(a - b)).toBeLessThan(5_000);
    }
    expect(await dst.pttl('list:big')).toBe(-1);
  });

  it('refuses a damaged or cut-short file', () => {
    const rdb = readFileSync(file);
    const damaged = Buffer.from(rdb);
    damaged[Math.floor(rdb.length / 2)]! ^= 0xff;
    expect(() => verifyRdbChecksum(damaged)).toThrow(/checksum does not match/);
    const cut = rdb.subarray(0, Math.floor(rdb.length * 0.7));
    expect(() => verifyRdbChecksum(cut)).toThrow(/BACKUP_INVALID|checksum/);
    expect(() => [...readRdb(cut)]).toThrow(/RDB: /);
    writeFileSync(join(dir, 'not.rdb'), 'hello world, not an RDB');
    expect(() => readRdbHeader(readFileSync(join(dir, 'not.rdb')))).toThrow(/not an RDB file/);
  });
});
