/** Benchmark upstream for the production run: GET /3/movie/<id> answers that id's ~4 KB document. */
import Fastify from 'fastify';
import { movieBody } from './movie-body.ts';

const bodies = new Map<number, Buffer>();
const app = Fastify({ logger: false });
app.get<{ Params: { id: string } }>('/3/movie/:id', async (req, reply) => {
  const id = Number(req.params.id);
  if (!Number.isInteger(id) || id < 0) return reply.code(404).send({ status_code: 34 });
  let body = bodies.get(id);
  if (!body) {
    body = movieBody(id);
    bodies.set(id, body);
  }
  return reply.type('application/json').send(body);
});
const url = await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`listening on ${url}\n`);
