/**
 * When a Lease held by someone else counts as expired (pure), judged by this replica's own
 * clock as client-go does: the holder's renewTime comes from the holder's clock, so comparing
 * it with ours would let clock skew hand the Lease to two replicas (or to none). Instead a
 * standby notes when it last saw the Lease record change and waits one lease duration from
 * then.
 */
import type { V1LeaseSpec } from '@kubernetes/client-node';

export interface LeaseObservation {
  /** The holder's record as last read (holder, renew time, transitions). */
  record: string;
  /** Our clock (ms) when that record was first seen. */
  seenAt: number;
}

const recordOf = (spec: V1LeaseSpec) =>
  JSON.stringify([
    spec.holderIdentity ?? '',
    spec.renewTime ? new Date(spec.renewTime).toISOString() : '',
    spec.leaseTransitions ?? 0,
    spec.leaseDurationSeconds ?? 0,
  ]);

/** The observation after reading `spec` at `now`: unchanged records keep their first sighting. */
export function observeLease(
  previous: LeaseObservation | undefined,
  spec: V1LeaseSpec,
  now: number,
): LeaseObservation {
  const record = recordOf(spec);
  return previous?.record === record ? previous : { record, seenAt: now };
}

/** Free to take: nobody holds it, or its record has not changed for a whole lease duration. */
export function leaseFree(
  obs: LeaseObservation,
  spec: V1LeaseSpec,
  defaultSeconds: number,
  now: number,
): boolean {
  if (!spec.holderIdentity) return true;
  return obs.seenAt + (spec.leaseDurationSeconds ?? defaultSeconds) * 1000 <= now;
}
