/** Benchmark upstream: every GET answers the same 4 KB JSON body (like a TMDB details page). */
import Fastify from 'fastify';
import { BODY_4K } from './body.ts';

const app = Fastify({ logger: false });
app.get('/*', async (_req, reply) => reply.type('application/json').send(BODY_4K));
const url = await app.listen({ port: 0, host: '127.0.0.1' });
process.stdout.write(`listening on ${url}\n`);
