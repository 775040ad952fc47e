/** Baseline: bare fastify + ioredis (auto-pipelining, one Redis) reading the 4 KB body by URL. */
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { BODY_4K } from './body.ts';

const redis = new Redis({
  port: Number(process.argv[2]),
  host: '127.0.0.1',
  enableAutoPipelining: true,
});
const app = Fastify({ logger: false });
app.get('/*', async (req, reply) => {
  const key = `bench:${req.url}`;
  let body = await redis.getBuffer(key);
  if (!body) {
    body = BODY_4K;
    await redis.set(key, body);
  }
  return reply.type('application/json').send(body);
});
const url = await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`listening on ${url}\n`);
