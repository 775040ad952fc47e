/**
 * One set of Redis nodes (the main cluster, or the fallback nodes) as the L2 tier uses it:
 * connects in the background (asking the first reachable node whether it is a cluster),
 * bounds every call with a timeout and guards it with a circuit breaker. While it is
 * connecting or the breaker is open, calls fail at once with L2_UNAVAILABLE.
 */
import type { ConnectionOptions } from 'node:tls';
import { Cluster, Redis } from 'ioredis';
import type { HostPort } from '../../lib/env.ts';
import { TiercacheError } from '../../lib/errors.ts';
import type { Logger } from '../../lib/log.ts';
import { formatAddr } from '../../lib/redis/addr.ts';
import { keySlot } from '../../lib/redis/key-slot.ts';
import { tlsConnectOptions } from '../../lib/redis/tls.ts';
import { armDeadline, settleWithin, withTimeout } from '../../lib/timeout.ts';
import type { RedisConfig } from '../config.ts';
import { type BreakerState, CircuitBreaker } from './breaker.ts';
import { nearestReads } from './nearest.ts';

export type RedisClient = Redis | Cluster;

/** A Lua script every client of a target defines as a command (sent as EVALSHA). */
export interface ScriptCommand {
  numberOfKeys: number;
  lua: string;
}

export interface TargetOptions extends Omit<RedisConfig, 'nodes' | 'fallbackNodes'> {
  name: 'main' | 'fallback';
  nodes: HostPort[];
  scripts?: Record<string, ScriptCommand>;
  log: Logger;
  onBreakerChange?: (target: string, state: BreakerState) => void;
  /** A cluster master's own breaker changed (`node` is its host:port). */
  onNodeBreakerChange?: (target: string, node: string, state: BreakerState) => void;
  onError?: (target: string, op: string) => void;
  /** A hot-path read the caller stopped waiting for (the soft deadline passed). */
  onSlowRead?: (target: string, op: string) => void;
}

const RECONNECT_MAX_MS = 2000;
/** With nearest reads, how often the slot map (which replicas there are) is asked again. */
const SLOTS_REFRESH_MS = 5000;
const reconnectDelay = (attempt: number) => Math.min(100 * attempt, RECONNECT_MAX_MS);

/** Turns a failed L2 call into an answer (see RedisTarget.call). */
export type Recover<R> = (err: TiercacheError) => R | PromiseLike<R>;

/**
 * A hot-path read that the caller stops waiting for after the soft deadline (it goes on
 * without L2) while the call runs on to its timeout in the background, still feeding the
 * breaker; `onLate` gets a reply that came after the caller had gone on.
 */
export interface SoftRead<T> {
  onLate?: (reply: T) => void;
}

export interface CallOptions<T> {
  /** The key the call is about: in a cluster, the breaker of the master holding it decides. */
  key?: string;
  soft?: SoftRead<T>;
}

/** An error reply from Redis itself (ioredis's ReplyError), as opposed to no reply at all. */
function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError';
}

/** Soft deadlines are whole multiples of this (each distinct duration has its own queue). */
const SOFT_STEP_MS = 10;
/** A soft deadline is never under this many times L2's recent latency. */
const SOFT_LATENCY_FACTOR = 3;

/** Settles a failed call: with `recover`'s answer when given (its own throw rejects), else with `err`. */
function settleFailure<R>(
  err: TiercacheError,
  recover: Recover<R> | undefined,
  resolve: (answer: R | PromiseLike<R>) => void,
  reject: (err: unknown) => void,
): void {
  if (!recover) {
    reject(err);
    return;
  }
  try {
    resolve(recover(err));
  } catch (recoverErr) {
    reject(recoverErr);
  }
}

/** A call refused before it reached Redis, settled as `call` settles a failed one. */
export function refusedCall<R>(err: TiercacheError, recover: Recover<R> | undefined): Promise<R> {
  return new Promise<R>((resolve, reject) => settleFailure(err, recover, resolve, reject));
}

export class RedisTarget {
  readonly name: 'main' | 'fallback';
  readonly nodes: HostPort[];
  /** The breaker of a standalone Redis, and of calls about no key. */
  readonly breaker: CircuitBreaker;
  /**
   * In a cluster, one breaker per master (by host:port), made on first use: a sick shard
   * closes L2 for its own slots, not for the others'.
   */
  readonly #nodeBreakers = new Map<string, CircuitBreaker>();
  #client: RedisClient | undefined;
  /** The client before its first `ready`: calls would fail and open the breaker on a healthy Redis. */
  #connecting: RedisClient | undefined;
  #kind: 'cluster' | 'standalone' | undefined;
  #closed = false;
  #detectTimer: NodeJS.Timeout | undefined;
  readonly #opts: TargetOptions;
  readonly #log: Logger;
  /**
   * Moving average of successful reads' latency (ms; 0 until the first is known): a far Redis
   * raises the soft deadline. Seeded by a PING when the client is ready.
   */
  #readMs = 0;
  /** REDIS_READ_FROM=nearest: where a cluster's reads go (nearest.ts). */
  readonly #nearest: ReturnType<typeof nearestReads> | undefined;

  constructor(opts: TargetOptions) {
    this.name = opts.name;
    this.nodes = opts.nodes;
    this.#opts = opts;
    this.#log = opts.log.child({ component: 'redis', target: opts.name });
    this.#nearest =
      opts.readFrom === 'nearest'
        ? nearestReads(
            () => (this.#client instanceof Cluster ? this.#client : undefined),
            opts.readTimeoutMs,
          )
        : undefined;
    this.breaker = new CircuitBreaker({
      failureThreshold: opts.breakerFailures,
      cooldownMs: opts.breakerCooldownMs,
    });
    this.breaker.onChange = (state) => {
      this.#log.warn({ breaker: state }, `L2 circuit breaker ${state}`);
      opts.onBreakerChange?.(opts.name, state);
    };
  }

  get kind(): 'cluster' | 'standalone' | undefined {
    return this.#kind;
  }

  /** Starts connecting; never throws, keeps trying in the background until it knows the mode. */
  start(): void {
    void this.#detect(1);
  }

  /**
   * True when a call would be attempted now: a client that was ready once, and the breaker
   * lets calls through — in a cluster, unless every master's breaker is open (then the
   * fallback nodes, if any, take over).
   */
  get available(): boolean {
    return this.#client !== undefined && this.breaker.wouldAllow() && !this.#everyNodeOpen();
  }

  #everyNodeOpen(): boolean {
    if (this.#nodeBreakers.size === 0) return false;
    for (const b of this.#nodeBreakers.values()) if (b.wouldAllow()) return false;
    return true;
  }

  /** The state of every cluster master's breaker met so far, by host:port. */
  nodeBreakerStates(): Record<string, BreakerState> {
    return Object.fromEntries([...this.#nodeBreakers].map(([node, b]) => [node, b.state]));
  }

  /** The breaker a call about `key` answers to. */
  #breakerFor(client: RedisClient, key: string | undefined): CircuitBreaker {
    if (key === undefined || !(client instanceof Cluster)) return this.breaker;
    const node = client.slots[keySlot(key)]?.[0];
    if (node === undefined) return this.breaker;
    let breaker = this.#nodeBreakers.get(node);
    if (!breaker) {
      breaker = new CircuitBreaker({
        failureThreshold: this.#opts.breakerFailures,
        cooldownMs: this.#opts.breakerCooldownMs,
      });
      breaker.onChange = (state) => {
        this.#log.warn({ breaker: state, node }, `L2 circuit breaker of ${node} ${state}`);
        this.#opts.onNodeBreakerChange?.(this.name, node, state);
      };
      this.#nodeBreakers.set(node, breaker);
    }
    return breaker;
  }

  /**
   * Runs `fn` against the client with a timeout; failures feed the breaker, and only the first
   * outcome counts (a reply after its deadline fired is not a success). Every L2 hit runs
   * through here, so the timeout and the breaker share one promise (withTimeout plus a `then`
   * would cost the hit path two more promises and microtasks).
   */
  call<T, R = T>(
    op: string,
    write: boolean,
    fn: (client: RedisClient) => Promise<T>,
    /** Applied to the reply in the same step (saves the hot path a `then` of its own). */
    map?: (reply: T) => R | PromiseLike<R>,
    /** Turns a failed call into an answer, in the same step; without it the promise rejects. */
    recover?: Recover<R>,
    { key, soft }: CallOptions<T> = {},
  ): Promise<R> {
    const client = this.#client;
    const breaker = client ? this.#breakerFor(client, key) : this.breaker;
    if (!client || !breaker.allow()) {
      return refusedCall(
        new TiercacheError('L2_UNAVAILABLE', `Redis ${this.name} is unavailable`),
        recover,
      );
    }
    const ms = write ? this.#opts.writeTimeoutMs : this.#opts.readTimeoutMs;
    const started = soft ? performance.now() : 0;
    return new Promise<R>((resolve, reject) => {
      // Whether the caller has its answer: from Redis, or from the soft deadline.
      let answered = false;
      const softMs = soft ? this.softDeadlineMs(client, key) : 0;
      const softDeadline =
        softMs > 0 && softMs < ms
          ? armDeadline(softMs, () => {
              answered = true;
              this.#opts.onSlowRead?.(this.name, op);
              settleFailure(
                new TiercacheError('L2_UNAVAILABLE', `Redis ${op} slower than ${softMs} ms`),
                recover,
                resolve,
                reject,
              );
            })
          : undefined;
      const fail = (err: unknown) => {
        softDeadline?.disarm();
        // Redis answered with an error (OOM on a write, WRONGTYPE…): it is there, so the breaker
        // hears a success; only calls that got no answer count against it.
        if (isReplyError(err)) breaker.success();
        else breaker.failure();
        this.#opts.onError?.(this.name, op);
        this.#log.debug({ op, err: (err as Error).message }, 'Redis call failed');
        if (answered) return;
        answered = true;
        const failure =
          err instanceof TiercacheError
            ? err
            : new TiercacheError('L2_UNAVAILABLE', `Redis ${op} failed`, undefined, err);
        settleFailure(failure, recover, resolve, reject);
      };
      let pending: Promise<T>;
      try {
        pending = fn(client);
      } catch (err) {
        fail(err);
        return;
      }
      settleWithin(
        pending,
        ms,
        `Redis ${op}`,
        (value) => {
          softDeadline?.disarm();
          breaker.success();
          if (soft) {
            const took = performance.now() - started;
            this.#readMs = this.#readMs === 0 ? took : this.#readMs * 0.95 + took * 0.05;
          }
          if (answered) {
            soft?.onLate?.(value);
            return;
          }
          answered = true;
          try {
            resolve(map ? map(value) : (value as unknown as R));
          } catch (err) {
            reject(err); // the reply's reader failed, not Redis: the breaker is not told
          }
        },
        fail,
      );
    });
  }

  /** Recent latency of hot-path reads in ms (0 until known). */
  get readLatencyMs(): number {
    return this.#readMs;
  }

  /**
   * The soft deadline of a hot-path read now: L2_SOFT_TIMEOUT_MS, or 3× the recent read
   * latency when that is longer (rounded up to 10 ms); 0 when soft deadlines are off.
   */
  softDeadlineMs(client?: RedisClient, key?: string): number {
    const floor = this.#opts.softTimeoutMs;
    // With nearest reads, the latency of the node this key's read goes to: a replica near,
    // or — its replica lost — a master that may be far.
    const nodeMs =
      this.#nearest && client instanceof Cluster && key !== undefined
        ? this.#nearest.latencyOfSlot(client, keySlot(key))
        : undefined;
    const readMs = nodeMs ?? this.#readMs;
    // Before any latency is known, a far Redis would look slow: wait the whole read timeout.
    if (floor <= 0 || readMs === 0 || !Number.isFinite(readMs)) return 0;
    const wanted = Math.max(floor, SOFT_LATENCY_FACTOR * readMs);
    return Math.ceil(wanted / SOFT_STEP_MS) * SOFT_STEP_MS;
  }

  /** The master connections, for per-node work (SCAN, DBSIZE) that must never cross slots. */
  masters(): Redis[] {
    const client = this.#client;
    if (!client) return [];
    return client instanceof Cluster ? client.nodes('master') : [client];
  }

  /** Every node connection the client holds (masters and, in a cluster, replicas). */
  connections(): Redis[] {
    const client = this.#client;
    if (!client) return [];
    return client instanceof Cluster ? client.nodes('all') : [client];
  }

  /** A second connection for pub/sub (a subscribed connection can do nothing else). */
  duplicate(): RedisClient | undefined {
    const client = this.#client;
    if (!client) return undefined;
    return client instanceof Cluster ? client.duplicate() : client.duplicate();
  }

  /** Whether reads go to the nearest copy of a slot rather than its master. */
  get readsNearest(): boolean {
    return this.#nearest !== undefined && this.#kind === 'cluster';
  }

  /** With nearest reads, each node's measured latency (ms; null: unreachable). */
  nodeLatencies(): Record<string, number | null> | undefined {
    return this.readsNearest ? this.#nearest!.latencies.snapshot() : undefined;
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#nearest?.stop();
    clearTimeout(this.#detectTimer);
    for (const client of [this.#client, this.#connecting]) client?.disconnect();
    this.#client = undefined;
    this.#connecting = undefined;
  }

  /** A first latency figure for the soft deadline: a PING's round trip (on a master in a cluster). */
  #measureLatency(client: RedisClient): void {
    const started = performance.now();
    client.ping().then(
      () => {
        if (this.#readMs === 0) this.#readMs = performance.now() - started;
      },
      () => undefined,
    );
  }

  async #detect(attempt: number): Promise<void> {
    if (this.#closed) return;
    try {
      const kind = this.#opts.mode === 'auto' ? await this.#probeKind() : this.#opts.mode;
      if (this.#closed) return;
      this.#kind = kind;
      const client = this.#connect(kind);
      this.#connecting = client;
      client.once('ready', () => {
        if (this.#connecting !== client) return; // closed meanwhile
        this.#client = client;
        this.#connecting = undefined;
        this.#measureLatency(client);
        this.#nearest?.measure();
      });
      this.#log.info({ kind, nodes: this.nodes.map(formatAddr) }, 'L2 connecting');
    } catch (err) {
      if (attempt === 1 || attempt % 20 === 0) {
        this.#log.warn(
          { err: (err as Error).message, attempt },
          'L2 not reachable yet; serving without it',
        );
      }
      this.#detectTimer = setTimeout(() => void this.#detect(attempt + 1), reconnectDelay(attempt));
    }
  }

  /** ioredis's TLS option when REDIS_TLS is on (the files read again for every new client). */
  #tls(): { tls?: ConnectionOptions } {
    return this.#opts.tls ? { tls: tlsConnectOptions(this.#opts.tls) } : {};
  }

  /** Asks the nodes in turn whether cluster mode is enabled. */
  async #probeKind(): Promise<'cluster' | 'standalone'> {
    let lastError: unknown;
    for (const node of this.nodes) {
      const probe = new Redis({
        host: node.host,
        port: node.port,
        username: this.#opts.username,
        password: this.#opts.password,
        ...this.#tls(),
        connectTimeout: this.#opts.connectTimeoutMs,
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        enableOfflineQueue: true,
      });
      // ioredis rejects connect() with "Connection is closed."; the socket's own error (a
      // refused certificate, a wrong name) is what an operator needs to read in the log.
      let socketError: Error | undefined;
      probe.on('error', (err: Error) => {
        socketError ??= err;
      });
      try {
        await withTimeout(probe.connect(), this.#opts.connectTimeoutMs, 'Redis connect');
        const info = await withTimeout(
          probe.info('cluster'),
          this.#opts.readTimeoutMs,
          'Redis INFO',
        );
        return /cluster_enabled:1/.test(info) ? 'cluster' : 'standalone';
      } catch (err) {
        lastError = socketError ?? err;
      } finally {
        probe.disconnect();
      }
    }
    throw lastError ?? new Error('no Redis nodes configured');
  }

  #connect(kind: 'cluster' | 'standalone'): RedisClient {
    const common = {
      username: this.#opts.username,
      password: this.#opts.password,
      ...this.#tls(),
      connectTimeout: this.#opts.connectTimeoutMs,
      // No ioredis commandTimeout: call() bounds every command already, and ioredis would arm
      // (and `delete`) a timer on every command — 2 µs of an L2 hit. A dead peer is found by
      // TCP keep-alive (ioredis default 30 s) while the breaker keeps calls away from it.
      maxRetriesPerRequest: 1,
    };
    let client: RedisClient;
    if (kind === 'cluster') {
      client = new Cluster(this.nodes, {
        redisOptions: common,
        enableOfflineQueue: false,
        // Not auto-pipelined: ioredis fails auto-pipelined commands that meet MOVED/ASK, which
        // every slot migration produces; plain commands follow the redirection.
        enableAutoPipelining: false,
        clusterRetryStrategy: reconnectDelay,
        retryDelayOnClusterDown: 100,
        retryDelayOnFailover: 100,
        slotsRefreshTimeout: this.#opts.connectTimeoutMs,
        // Read-only commands to the nearest copy of their slot (READONLY on replicas);
        // writes, scripts and leases always to the master.
        // The slot map is asked again every few seconds too: Redis lists a replica only once
        // it has replicated something, and a new one would otherwise not be known until a MOVED.
        ...(this.#nearest
          ? { scaleReads: this.#nearest.scaleReads, slotsRefreshInterval: SLOTS_REFRESH_MS }
          : {}),
      });
    } else {
      const node = this.nodes[0]!;
      client = new Redis({
        ...common,
        host: node.host,
        port: node.port,
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        retryStrategy: reconnectDelay,
      });
    }
    for (const [name, script] of Object.entries(this.#opts.scripts ?? {}))
      client.defineCommand(name, script);
    let lastLogged = 0;
    client.on('error', (err: Error) => {
      // Reconnect errors repeat every few hundred ms while Redis is down; log at most every 10 s.
      const now = Date.now();
      if (now - lastLogged > 10_000) {
        lastLogged = now;
        this.#log.warn({ err: err.message }, 'Redis connection error');
      }
    });
    client.on('ready', () => this.#log.info('L2 ready'));
    return client;
  }
}
