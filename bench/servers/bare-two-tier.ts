/**
 * Baseline for the production run: bare fastify + lru-cache + ioredis Cluster doing the same
 * two-tier lookup as the proxy — memory (64 MiB, as L1's default), then Redis Cluster (plain
 * commands, as the proxy sends them), then the upstream, writing both tiers on a miss.
 *
 *   node bare-two-tier.ts <upstream url> <host:port,…> [extra µs of busy work per request]
 */
import Fastify from 'fastify';
import { Cluster } from 'ioredis';
import { LRUCache } from 'lru-cache';
import { request } from 'undici';

const [upstream, nodes, extra] = process.argv.slice(2) as [string, string, string | undefined];
// The side-by-side method's sensitivity check: a known CPU cost added to every request. Counted
// in CPU time, not wall time: side by side, a wall-clock wait is preempted and burns more.
const extraUs = Number(extra ?? 0);

const lru = new LRUCache<string, Buffer>({
  maxSize: 64 * 1024 * 1024,
  sizeCalculation: (body, key) => body.length + key.length * 2 + 256,
});
const redis = new Cluster(
  nodes.split(',').map((n) => {
    const [host, port] = n.split(':');
    return { host: host!, port: Number(port) };
  }),
  { enableAutoPipelining: false },
);

async function lookup(url: string): Promise<Buffer> {
  const key = `bare:${url}`;
  let body = lru.get(key);
  if (body) return body;
  body = (await redis.getBuffer(key)) ?? undefined;
  if (!body) {
    const res = await request(upstream + url);
    body = Buffer.from(await res.body.arrayBuffer());
    await redis.set(key, body, 'EX', 3600);
  }
  lru.set(key, body);
  return body;
}

const app = Fastify({ logger: false });
app.get('/*', async (req, reply) => {
  if (extraUs > 0) {
    const start = process.cpuUsage();
    for (;;) {
      const used = process.cpuUsage(start);
      if (used.user + used.system >= extraUs) break;
    }
  }
  return reply.type('application/json').send(await lookup(req.url));
});
await new Promise((resolve) => redis.once('ready', resolve));
const url = await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`listening on ${url}\n`);
