/**
 * Guard for admin routes (every mutation, and the reads that show keys, topology or config):
 * `Authorization: Bearer <ADMIN_TOKEN>` (or `X-Admin-Token`).
 * Compared in constant time; with no ADMIN_TOKEN configured the routes are disabled.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { TiercacheError } from '../../lib/errors.ts';

const digest = (s: string) => createHash('sha256').update(s).digest();

export function adminGuard(token: string | undefined) {
  const expected = token === undefined ? undefined : digest(token);
  return async (req: FastifyRequest): Promise<void> => {
    if (!expected)
      throw new TiercacheError(
        'FORBIDDEN',
        'admin routes are disabled: set ADMIN_TOKEN to enable them',
      );
    const header = req.headers.authorization;
    const given = header?.startsWith('Bearer ') ? header.slice(7) : req.headers['x-admin-token'];
    if (typeof given !== 'string' || !timingSafeEqual(digest(given), expected)) {
      throw new TiercacheError(
        'UNAUTHORIZED',
        'a valid admin token is required (Authorization: Bearer <ADMIN_TOKEN>)',
      );
    }
  };
}
