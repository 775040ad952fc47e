/** host:port addresses as the CLI and REDIS_CLUSTER_NODES give them. */
import { TiercacheError } from '../../lib/errors.ts';

export interface Addr {
  host: string;
  port: number;
}

export function parseAddr(text: string): Addr {
  const m = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(text.trim());
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535) {
    throw new TiercacheError('BAD_REQUEST', `"${text}" is not a host:port address`);
  }
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

export function formatAddr(a: Addr): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
