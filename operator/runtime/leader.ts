/**
 * Lease-based leader election (coordination.k8s.io/v1), as client-go does it: the leader
 * renews its Lease every few seconds; a standby takes over once the Lease has not been renewed
 * for its duration, as this replica's clock measures it (lease-clock.ts: skew between the
 * replicas' clocks does not matter). Updates carry the resourceVersion, so two replicas can
 * never both win.
 * Lease timestamps are MicroTime (V1MicroTime), which the API server requires.
 */
import { type V1Lease, V1MicroTime } from '@kubernetes/client-node';
import type { Logger } from '../../lib/log.ts';
import { isConflict, isNotFound, type Kube } from './kube.ts';
import { type LeaseObservation, leaseFree, observeLease } from './lease-clock.ts';

export interface LeaderOptions {
  kube: Kube;
  namespace: string;
  name: string;
  identity: string;
  leaseSeconds: number;
  log: Logger;
}

export class LeaderElector {
  readonly #o: LeaderOptions;
  #leading = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #lastRenew = 0;
  #observed: LeaseObservation | undefined;

  constructor(options: LeaderOptions) {
    this.#o = options;
  }

  get leading(): boolean {
    return this.#leading;
  }

  /**
   * Resolves once this replica leads. `onLost` runs if it stops leading afterwards (the
   * process should exit then, as controller-runtime does: another replica has taken over).
   */
  async acquire(onLost: () => void): Promise<void> {
    const retryMs = Math.max(500, (this.#o.leaseSeconds * 1000) / 5);
    while (!this.#stopped && !(await this.#tryAcquireOrRenew())) {
      await new Promise((r) => setTimeout(r, retryMs));
    }
    if (this.#stopped) return;
    this.#o.log.info(
      { lease: `${this.#o.namespace}/${this.#o.name}`, identity: this.#o.identity },
      'leading',
    );
    const renew = async () => {
      const ok = await this.#tryAcquireOrRenew();
      const deadline = this.#lastRenew + this.#o.leaseSeconds * 1000 * 0.8;
      if (!ok && Date.now() > deadline && !this.#stopped) {
        this.#leading = false;
        this.#o.log.error('lost the leader lease');
        onLost();
        return;
      }
      if (!this.#stopped) this.#timer = setTimeout(renew, retryMs);
    };
    this.#timer = setTimeout(renew, retryMs);
  }

  async #tryAcquireOrRenew(): Promise<boolean> {
    const { kube, namespace, name, identity, leaseSeconds } = this.#o;
    const api = kube.coordination;
    const now = new V1MicroTime();
    try {
      let lease: V1Lease;
      try {
        lease = await api.readNamespacedLease({ name, namespace });
      } catch (err) {
        if (!isNotFound(err)) throw err;
        await api.createNamespacedLease({
          namespace,
          body: {
            metadata: { name, namespace },
            spec: {
              holderIdentity: identity,
              leaseDurationSeconds: leaseSeconds,
              acquireTime: now,
              renewTime: now,
              leaseTransitions: 0,
            },
          },
        });
        return this.#won();
      }
      const spec = lease.spec ?? {};
      const mine = spec.holderIdentity === identity;
      this.#observed = observeLease(this.#observed, spec, Date.now());
      if (!mine && !leaseFree(this.#observed, spec, leaseSeconds, Date.now())) {
        this.#leading = false;
        return false;
      }
      await api.replaceNamespacedLease({
        name,
        namespace,
        body: {
          metadata: { name, namespace, resourceVersion: lease.metadata?.resourceVersion },
          spec: {
            holderIdentity: identity,
            leaseDurationSeconds: leaseSeconds,
            acquireTime: mine && spec.acquireTime ? new V1MicroTime(spec.acquireTime) : now,
            renewTime: now,
            leaseTransitions: (spec.leaseTransitions ?? 0) + (mine ? 0 : 1),
          },
        },
      });
      return this.#won();
    } catch (err) {
      if (!isConflict(err))
        this.#o.log.warn({ err: (err as Error).message }, 'leader election: lease call failed');
      return false;
    }
  }

  #won(): boolean {
    this.#leading = true;
    this.#lastRenew = Date.now();
    return true;
  }

  /** Stops renewing and, when leading, releases the Lease so a standby takes over at once. */
  async release(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    if (!this.#leading) return;
    this.#leading = false;
    const { kube, namespace, name } = this.#o;
    try {
      const lease = await kube.coordination.readNamespacedLease({ name, namespace });
      if (lease.spec?.holderIdentity !== this.#o.identity) return;
      await kube.coordination.replaceNamespacedLease({
        name,
        namespace,
        body: {
          metadata: { name, namespace, resourceVersion: lease.metadata?.resourceVersion },
          spec: {
            leaseDurationSeconds: 1,
            leaseTransitions: lease.spec.leaseTransitions ?? 0,
            renewTime: new V1MicroTime(),
          },
        },
      });
    } catch {
      // The Lease simply expires.
    }
  }
}
