import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../proxy/cache/breaker.ts';
import { Singleflight } from '../../proxy/cache/singleflight.ts';
import { parseRetryAfter, RateLimitGate } from '../../proxy/upstreams/backoff.ts';

describe('circuit breaker', () => {
  it('opens after the threshold, probes once after the cooldown, and closes on success', () => {
    let now = 0;
    const b = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 1000, now: () => now });
    b.failure();
    b.failure();
    expect(b.allow()).toBe(true);
    b.failure();
    expect(b.state).toBe('open');
    expect(b.allow()).toBe(false);
    now = 1000;
    expect(b.wouldAllow()).toBe(true);
    expect(b.allow()).toBe(true); // the probe
    expect(b.state).toBe('half-open');
    expect(b.allow()).toBe(false); // only one probe at a time
    b.success();
    expect(b.state).toBe('closed');
    expect(b.allow()).toBe(true);
  });

  it('reopens when the probe fails', () => {
    let now = 0;
    const b = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 100, now: () => now });
    b.failure();
    now = 100;
    expect(b.allow()).toBe(true);
    b.failure();
    expect(b.state).toBe('open');
    expect(b.allow()).toBe(false);
  });
});

describe('singleflight', () => {
  it('runs one call per key for concurrent callers', async () => {
    const flight = new Singleflight<number>();
    let calls = 0;
    let release!: (v: number) => void;
    const fn = () => {
      calls += 1;
      return new Promise<number>((r) => {
        release = r;
      });
    };
    const first = flight.run('k', fn);
    const second = flight.run('k', fn);
    expect(first.joined).toBe(false);
    expect(second.joined).toBe(true);
    release(7);
    expect(await Promise.all([first.result, second.result])).toEqual([7, 7]);
    expect(calls).toBe(1);
    expect(flight.has('k')).toBe(false);
  });
});

describe('429 back-off', () => {
  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('3', 0)).toBe(3000);
    expect(parseRetryAfter(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(parseRetryAfter('soon', 0)).toBeUndefined();
  });

  it('closes the gate for Retry-After, or backs off exponentially without one', () => {
    const gate = new RateLimitGate();
    gate.record(429, '2', 0);
    expect(gate.waitMs(500)).toBe(1500);
    expect(gate.waitMs(2000)).toBe(0);
    gate.record(429, undefined, 2000);
    expect(gate.waitMs(2000)).toBe(2000); // second strike: 2 s
    gate.record(200, undefined, 5000);
    gate.record(429, undefined, 5000);
    expect(gate.waitMs(5000)).toBe(1000); // a success reset the strikes
  });
});
