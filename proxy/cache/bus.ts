/**
 * L1 coherence across replicas: invalidations are published on a Redis pub/sub channel and
 * every replica applies them to its own L1. A replica that cannot reach Redis at that moment
 * misses the message; its L1 TTL (minutes) bounds how long it may serve what was cleared.
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
type Envelope = Invalidation & { id: string; origin: string };

const ATTACH_POLL_MS = 250;
const SEEN_LIMIT = 1000;

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
  }

  /** How many targets this replica currently listens on (0 until the first SUBSCRIBE succeeds). */
  get subscribed(): number {
    return this.#subscribed;
  }

  /** Sends an invalidation to every replica (this one applies it itself, before sending). */
  async publish(msg: Invalidation): Promise<number> {
    const envelope: Envelope = { ...msg, id: randomUUID(), origin: this.origin };
    this.#remember(envelope.id);
    return this.#l2.publish(BUS_CHANNEL, JSON.stringify(envelope));
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
      this.#apply(msg, msg.origin);
    }
  }

  #remember(id: string): void {
    this.#seen.add(id);
    if (this.#seen.size > SEEN_LIMIT) this.#seen.delete(this.#seen.values().next().value as string);
  }
}
