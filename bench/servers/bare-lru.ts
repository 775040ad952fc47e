/** Baseline: bare fastify + lru-cache serving the 4 KB body from memory by URL. */
import Fastify from 'fastify';
import { LRUCache } from 'lru-cache';
import { BODY_4K } from './body.ts';

const lru = new LRUCache<string, Buffer>({ max: 10_000 });
const app = Fastify({ logger: false });
app.get('/*', async (req, reply) => {
  let body = lru.get(req.url);
  if (!body) {
    body = BODY_4K;
    lru.set(req.url, body);
  }
  return reply.type('application/json').send(body);
});
const url = await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`listening on ${url}\n`);
