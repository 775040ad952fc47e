/**
 * A key's Redis Cluster hash slot, computed by the same package ioredis routes commands with
 * (`cluster-key-slot`, which ships no types), so a slot here always names the node ioredis
 * sends the key to.
 */
import { createRequire } from 'node:module';

const generate = createRequire(import.meta.url)('cluster-key-slot') as (key: string) => number;

export function keySlot(key: string): number {
  return generate(key);
}
