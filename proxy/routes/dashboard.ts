/**
 * `GET /dashboard`: the operator's page (hit rates per tier and category, sizes, upstreams,
 * Redis nodes, a key browser and clears). Its assets ship in the package and are read once at
 * start-up; the page itself only reads the proxy's JSON routes.
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

const ASSETS: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'dashboard.js': 'text/javascript; charset=utf-8',
  'dashboard.css': 'text/css; charset=utf-8',
};

// Everything from this origin only: no CDN, no inline script.
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'";

export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  const files = new Map(
    Object.entries(ASSETS).map(([name, type]) => [
      name,
      { type, body: readFileSync(new URL(`../dashboard/${name}`, import.meta.url)) },
    ]),
  );
  const serve = (name: string) => async (_req: unknown, reply: import('fastify').FastifyReply) => {
    const file = files.get(name)!;
    return reply
      .type(file.type)
      .header('content-security-policy', CSP)
      .header('cache-control', 'no-cache')
      .send(file.body);
  };
  app.get('/dashboard', serve('index.html'));
  app.get('/dashboard/', serve('index.html'));
  app.get('/dashboard/dashboard.js', serve('dashboard.js'));
  app.get('/dashboard/dashboard.css', serve('dashboard.css'));
}
