import { describe, expect, it } from 'vitest';
import { leaseFree, observeLease } from '../../operator/runtime/lease-clock.ts';

const HOUR = 3_600_000;

describe('leader election judged by the standby’s own clock', () => {
  it('keeps a renewing leader whose clock runs an hour behind', () => {
    // The leader's renewTime is an hour old by our clock at every renewal.
    let obs = observeLease(undefined, lease(0 - HOUR), 0);
    for (let t = 2_000; t <= 60_000; t += 2_000) {
      obs = observeLease(obs, lease(t - HOUR), t);
      expect(leaseFree(obs, lease(t - HOUR), 15, t)).toBe(false);
    }
  });

  it('takes a Lease whose record stopped changing one duration after it was first seen', () => {
    const stale = lease(-HOUR); // the holder is gone; its last renewal was long ago
    const first = observeLease(undefined, stale, 100_000);
    expect(leaseFree(first, stale, 15, 100_000)).toBe(false); // a newcomer waits a duration
    const later = observeLease(first, stale, 114_999);
    expect(later).toBe(first);
    expect(leaseFree(later, stale, 15, 114_999)).toBe(false);
    expect(leaseFree(later, stale, 15, 115_000)).toBe(true);
  });

  it('does not trust a leader clock running ahead either', () => {
    const ahead = lease(HOUR);
    const obs = observeLease(undefined, ahead, 0);
    expect(leaseFree(obs, ahead, 15, 15_000)).toBe(true);
  });

  it('takes a released Lease at once', () => {
    const released = { leaseDurationSeconds: 1, renewTime: new Date(0), leaseTransitions: 3 };
    expect(leaseFree(observeLease(undefined, released, 0), released, 15, 0)).toBe(true);
  });
});

function lease(renewMs: number) {
  return {
    holderIdentity: 'operator-a',
    leaseDurationSeconds: 15,
    renewTime: new Date(renewMs),
    leaseTransitions: 1,
  };
}
