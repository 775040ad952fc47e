/**
 * A key's Redis Cluster hash slot, computed by the same package ioredis routes commands with
 * (`cluster-key-slot`, which ships no types), so a slot here always names the node ioredis
 * sends the key to.
 */
import { createRequire } from 'node:module';

const generate = createRequire(import.meta.url)('cluster-key-slot') as (
  key: string | Uint8Array,
) => number;

/** A string is hashed as its UTF-8 bytes; binary keys (read from an RDB file) as they are. */
export function keySlot(key: string | Uint8Array): number {
  return generate(key);
}
