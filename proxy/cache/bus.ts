/**
 * L1 coherence across replicas: invalidations are published on a Redis pub/sub channel and
 * every replica applies them to its own L1. Pub/sub delivers only to who listens at that
 * moment, so every invalidation also moves a clear generation kept in Redis: a replica
 * compares it when its subscription comes up and every CATCH_UP_EVERY_MS (an ioredis Cluster
 * re-subscribes after a cut without telling), and flushes its whole L1 when it moved without a
 * message (it was cut off, or the message was lost). One GET per target every 2 s.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../lib/log.ts';
import { BUS_CHANNEL } from './keys.ts';
import type { RedisTier } from './l2.ts';
import type { RedisClient } from './redis-target.ts';

export type Invalidation =
  | { action: 'clear' }
  | { action: 'delete'; keys: string[] }
  | { action: 'prefix'; prefix: string };
type Envelope = Invalidation & {
  id: string;
  origin: string;
  /** The clear generation per target after this invalidation. */
  generations?: Record<string, string>;
};

const ATTACH_POLL_MS = 250;
const SEEN_LIMIT = 1000;
export const CATCH_UP_EVERY_MS = 2000;

export class InvalidationBus {
  readonly #subscribers: RedisClient[] = [];
  readonly #seen = new Set<string>();
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #log: Logger;
  readonly #l2: RedisTier;
  readonly #apply: (msg: Invalidation, origin: string) => void;
  readonly origin: string;
  #closed = false;
  #subscribed = 0;
  #applied = 0;
  /** The clear generation per target this replica's L1 is up to date with. */
  readonly #generations = new Map<string, string>();

  constructor(
    l2: RedisTier,
    origin: string,
    apply: (msg: Invalidation, origin: string) => void,
    log: Logger,
  ) {
    this.#l2 = l2;
    this.origin = origin;
    this.#apply = apply;
    this.#log = log.child({ component: 'bus', channel: BUS_CHANNEL });
    for (const target of l2.targets) this.#attachWhenConnected(target);
    const timer = setInterval(
      () =>
        void this.catchUp().catch((err: Error) =>
          this.#log.warn({ err: err.message }, 'clear generation check failed'),
        ),
      CATCH_UP_EVERY_MS,
    );
    timer.unref();
    this.#timers.push(timer);
  }

  /** Invalidations applied here: received from other replicas, or caught up on. */
  get applied(): number {
    return this.#applied;
  }

  /** How many targets this replica currently listens on (0 until the first SUBSCRIBE succeeds). */
  get subscribed(): number {
    return this.#subscribed;
  }

  /** Sends an invalidation to every replica (this one applies it itself, before sending). */
  async publish(msg: Invalidation): Promise<number> {
    const generations = await this.#l2.bumpClearGeneration();
    this.#adopt(generations);
    const envelope: Envelope = { ...msg, id: randomUUID(), origin: this.origin, generations };
    this.#remember(envelope.id);
    return this.#l2.publish(BUS_CHANNEL, JSON.stringify(envelope));
  }

  /**
   * Compares the clear generations in Redis with the ones this L1 has seen: one that moved
   * means an invalidation whose message never arrived, and the whole L1 is flushed (which keys
   * it named is not known). The first sight of a target only records its generation.
   */
  async catchUp(): Promise<void> {
    if (this.#closed) return;
    const now = await this.#l2.clearGenerations();
    const missed = Object.entries(now).filter(([target, generation]) => {
      const seen = this.#generations.get(target);
      return seen !== undefined && seen !== generation;
    });
    this.#adopt(now);
    if (missed.length === 0) return;
    this.#log.warn(
      { targets: missed.map(([t]) => t) },
      'missed an invalidation while cut off from Redis: L1 flushed',
    );
    this.#applied += 1;
    this.#apply({ action: 'clear' }, 'clear-generation');
  }

  #adopt(generations: Record<string, string>): void {
    for (const [target, generation] of Object.entries(generations))
      if (typeof generation === 'string') this.#generations.set(target, generation);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const t of this.#timers) clearInterval(t);
    for (const s of this.#subscribers) s.disconnect();
  }

  #attachWhenConnected(target: RedisTier['targets'][number]): void {
    const timer = setInterval(() => {
      if (this.#closed) return;
      const sub = target.duplicate();
      if (!sub) return;
      clearInterval(timer);
      let counted = false;
      sub.on('error', () => {}); // the main connection already reports connection trouble
      sub.on('ready', () => {
        sub.subscribe(BUS_CHANNEL).then(
          () => {
            if (!counted) this.#subscribed += 1;
            counted = true;
            // (Re)subscribed: what was published meanwhile is known by its generation only.
            void this.catchUp().catch((err: Error) =>
              this.#log.warn({ err: err.message }, 'clear generation check failed'),
            );
          },
          (err: Error) => this.#log.warn({ err: err.message }, 'subscribe failed'),
        );
      });
      sub.on('message', (_channel: string, raw: string) => this.#receive(raw));
      this.#subscribers.push(sub);
    }, ATTACH_POLL_MS);
    this.#timers.push(timer);
  }

  #receive(raw: string): void {
    let msg: Envelope;
    try {
      msg = JSON.parse(raw);
    } catch {
      this.#log.warn('ignored a malformed bus message');
      return;
    }
    // Main and fallback may both deliver the same message; apply it once.
    if (typeof msg.id !== 'string' || this.#seen.has(msg.id)) return;
    this.#remember(msg.id);
    if (
      msg.action === 'clear' ||
      (msg.action === 'delete' && Array.isArray(msg.keys)) ||
      (msg.action === 'prefix' && typeof msg.prefix === 'string')
    ) {
      if (msg.generations && typeof msg.generations === 'object') this.#adopt(msg.generations);
      this.#applied += 1;
      this.#apply(msg, msg.origin);
    }
  }

  #remember(id: string): void {
    this.#seen.add(id);
    if (this.#seen.size > SEEN_LIMIT) this.#seen.delete(this.#seen.values().next().value as string);
  }
}
