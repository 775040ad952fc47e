/**
 * host:port addresses as the CLI, REDIS_CLUSTER_NODES and Redis itself give them. An IPv6
 * host is bracketed in every address tiercache writes (`[fd00::5]:6379`), as in a URL.
 */
import { TiercacheError } from '../errors.ts';

export interface Addr {
  host: string;
  port: number;
}

/** `host:port` or `[v6]:port`; undefined when the text is neither or the port is out of range. */
export function matchAddr(text: string): Addr | undefined {
  const m = /^(\[[^\]]+\]|[^:\s[\]]+):(\d{1,5})$/.exec(text.trim());
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

export function parseAddr(text: string): Addr {
  const a = matchAddr(text);
  if (!a) throw new TiercacheError('BAD_REQUEST', `"${text}" is not a host:port address`);
  return a;
}

export function formatAddr(a: Addr): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/**
 * The address as tiercache writes it, from Redis's own form: `CLUSTER NODES` and MOVED print
 * an IPv6 host without brackets (`fd00::5:6379`), so the port is what follows the last colon.
 * A node without an address yet (`:6379`) keeps its empty host.
 */
export function fromRedisAddr(text: string): string {
  const colon = text.lastIndexOf(':');
  if (colon < 0 || text.startsWith('[')) return text;
  return formatAddr({ host: text.slice(0, colon), port: Number(text.slice(colon + 1)) });
}
