/**
 * The project's logger: pino, JSON lines, with secrets redacted by path wherever they could
 * appear. Components take a child logger naming what they are about (`{ component, ... }`).
 */
import pino, { type Logger } from 'pino';

export type { Logger };

const REDACT = [
  'password',
  '*.password',
  'apiKey',
  '*.apiKey',
  'token',
  '*.token',
  'req.headers.authorization',
  'req.headers["x-admin-token"]',
];

export function createLogger(
  level: string,
  base: Record<string, unknown> = {},
  destination?: pino.DestinationStream,
): Logger {
  return pino(
    { level, base: { pid: process.pid, ...base }, redact: { paths: REDACT, censor: '[redacted]' } },
    destination,
  );
}
