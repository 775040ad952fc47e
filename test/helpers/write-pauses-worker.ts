/**
 * Runs in a worker thread: writes back to back through an ioredis Cluster client and records
 * the longest time between two successful writes (the write pause). A thread of its own, so
 * the test's synchronous kubectl calls cannot stall it and inflate the pause it measures.
 *
 * With `keys` it writes those keys in turn; with `prefix` it writes `<prefix>:<i>` = i for
 * i = 0, 1, … and returns the indexes Redis acknowledged, so every acknowledged write can be
 * looked for afterwards.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Cluster } from 'ioredis';
import { tlsConnectOptions } from '../../lib/redis/tls.ts';

interface Input {
  nodes: { host: string; port: number }[];
  /** How to sign in (ioredis's username and password; none when auth is off). */
  auth: { username?: string; password?: string };
  /** A TLS CacheCluster's CA and the name its certificates carry. */
  tls?: { ca: string; serverName: string };
  keys?: string[];
  prefix?: string;
}

const { nodes, auth, tls, keys, prefix } = workerData as Input;
const cluster = new Cluster(nodes, {
  redisOptions: {
    ...auth,
    ...(tls ? { tls: tlsConnectOptions(tls) } : {}),
    connectTimeout: 2000,
    commandTimeout: 2000,
  },
  retryDelayOnFailover: 50,
  retryDelayOnClusterDown: 50,
  retryDelayOnTryAgain: 50,
  maxRedirections: 32,
});
cluster.on('error', () => {});

let stopped = false;
parentPort!.on('message', () => {
  stopped = true;
});

const acked: number[] = [];
let successes = 0;
let failures = 0;
let longestMs = 0;
let last = performance.now();
for (let i = 0; !stopped; i++) {
  try {
    const key = keys ? keys[i % keys.length]! : `${prefix}:${i}`;
    await cluster.set(key, String(i));
    const now = performance.now();
    longestMs = Math.max(longestMs, now - last);
    last = now;
    successes++;
    if (!keys) acked.push(i);
  } catch {
    failures++;
  }
}
cluster.disconnect();
parentPort!.postMessage({ successes, failures, longestMs: Math.round(longestMs), acked });
