/**
 * Direct connections to cluster nodes, one per address, each command bounded by a timeout.
 * The manager talks to Redis itself — no redis-cli, no kubectl exec.
 */
import { Redis } from 'ioredis';
import { TiercacheError } from '../../lib/errors.ts';
import { type Addr, formatAddr, parseAddr } from '../../lib/redis/addr.ts';
import { type RedisTls, tlsConnectOptions } from '../../lib/redis/tls.ts';
import { withTimeout } from '../../lib/timeout.ts';

export interface ConnectionOptions {
  /** The ACL user to sign in as; default `default`. */
  username?: string | undefined;
  /** Sent as `AUTH <username> <password>`; as default's, a node without a password (nopass) accepts any. */
  password?: string | undefined;
  /** Per-command timeout in ms. */
  timeoutMs: number;
  /** TLS to every node (its files read when a node's connection is made). */
  tls?: RedisTls | undefined;
}

export class Connections {
  readonly #clients = new Map<string, Redis>();
  /** The last error a connection reported (a refused AUTH, a reset), by address. */
  readonly #lastErrors = new Map<string, string>();
  #closed = false;
  readonly opts: ConnectionOptions;

  constructor(opts: ConnectionOptions) {
    this.opts = opts;
  }

  client(addr: string | Addr): Redis {
    const key = typeof addr === 'string' ? formatAddr(parseAddr(addr)) : formatAddr(addr);
    let c = this.#clients.get(key);
    if (!c) {
      const { host, port } = parseAddr(key);
      c = new Redis({
        host,
        port,
        // Empty means none (auth disabled): no AUTH at all.
        ...(this.opts.password
          ? { username: this.opts.username ?? 'default', password: this.opts.password }
          : {}),
        ...(this.opts.tls ? { tls: tlsConnectOptions(this.opts.tls) } : {}),
        connectTimeout: this.opts.timeoutMs,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        lazyConnect: true,
        enableOfflineQueue: true,
      });
      // Failures surface as rejected commands; a refused login only as "Connection is closed",
      // so the reason it was closed is kept for the error that command gets.
      c.on('error', (err: Error) => this.#lastErrors.set(key, err.message));
      this.#clients.set(key, c);
    }
    return c;
  }

  /** Runs one command on a node; rejects with a TiercacheError naming the node on failure or timeout. */
  call<T = unknown>(addr: string, ...args: (string | number | Buffer)[]): Promise<T> {
    return this.callWithin<T>(this.opts.timeoutMs, addr, ...args);
  }

  /** `call` with its own deadline, for commands that take long by design (MIGRATE). */
  async callWithin<T = unknown>(
    timeoutMs: number,
    addr: string,
    ...args: (string | number | Buffer)[]
  ): Promise<T> {
    // Work left running after its owner closed these connections must not act on the cluster.
    if (this.#closed)
      throw new TiercacheError('L2_UNAVAILABLE', `${addr}: connections closed`, { addr });
    const c = this.client(addr);
    try {
      if (c.status === 'wait' || c.status === 'end')
        await withTimeout(c.connect(), this.opts.timeoutMs, `connect to ${addr}`);
      return (await withTimeout(
        c.call(String(args[0]), ...args.slice(1)),
        timeoutMs,
        `${args[0]} on ${addr}`,
      )) as T;
    } catch (err) {
      const closed = c.status === 'end' || c.status === 'close';
      const why = closed ? this.#lastErrors.get(formatAddr(parseAddr(addr))) : undefined;
      if (closed) this.forget(addr);
      if (err instanceof TiercacheError) throw err;
      const message = (err as Error).message;
      throw new TiercacheError(
        'L2_UNAVAILABLE',
        `${addr}: ${args.slice(0, 2).join(' ')} failed: ${message}${why && why !== message ? ` (${why})` : ''}`,
        { addr },
        err,
      );
    }
  }

  forget(addr: string): void {
    const key = formatAddr(parseAddr(addr));
    this.#clients.get(key)?.disconnect();
    this.#clients.delete(key);
    this.#lastErrors.delete(key);
  }

  close(): void {
    this.#closed = true;
    for (const c of this.#clients.values()) c.disconnect();
    this.#clients.clear();
  }
}

/** Parses the `key:value` lines of INFO / CLUSTER INFO. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1).trim();
  }
  return out;
}
