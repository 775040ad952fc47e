/**
 * Runs in a worker thread: writes to the given keys back to back through an ioredis Cluster
 * client and records the longest time between two successful writes. A thread of its own, so
 * the test's synchronous kubectl calls cannot stall it and inflate the pause it measures.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Cluster } from 'ioredis';

interface Input {
  nodes: { host: string; port: number }[];
  password: string;
  keys: string[];
}

const { nodes, password, keys } = workerData as Input;
const cluster = new Cluster(nodes, {
  redisOptions: { password, connectTimeout: 2000, commandTimeout: 2000 },
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

let successes = 0;
let failures = 0;
let longestMs = 0;
let last = performance.now();
for (let i = 0; !stopped; i++) {
  try {
    await cluster.set(keys[i % keys.length]!, String(i));
    const now = performance.now();
    longestMs = Math.max(longestMs, now - last);
    last = now;
    successes++;
  } catch {
    failures++;
  }
}
cluster.disconnect();
parentPort!.postMessage({ successes, failures, longestMs: Math.round(longestMs) });
