import { describe, expect, it } from 'vitest';
import { TiercacheError } from '../../lib/errors.ts';
import { armDeadline, withTimeout } from '../../lib/timeout.ts';

const fired = (ms: number) =>
  new Promise<number>((resolve) => {
    const armedAt = performance.now();
    armDeadline(ms, () => resolve(performance.now() - armedAt));
  });

describe('deadlines', () => {
  it('passes a settled value through and fails a call that never settles with TIMEOUT', async () => {
    await expect(withTimeout(Promise.resolve(7), 50, 'quick')).resolves.toBe(7);
    await expect(withTimeout(Promise.reject(new Error('no')), 50, 'failing')).rejects.toThrow('no');
    const started = performance.now();
    const err = (await withTimeout(new Promise(() => {}), 30, 'Redis get').catch(
      (e: unknown) => e,
    )) as TiercacheError;
    expect(err).toBeInstanceOf(TiercacheError);
    expect(err.code).toBe('TIMEOUT');
    expect(err.message).toBe('Redis get timed out after 30 ms');
    expect(performance.now() - started).toBeGreaterThanOrEqual(29);
  });

  it('fires a short deadline on time behind a long one armed before it', async () => {
    let longFired = false;
    const long = armDeadline(60_000, () => {
      longFired = true;
    });
    const waited = await fired(20);
    expect(waited).toBeGreaterThanOrEqual(19);
    expect(waited).toBeLessThan(1000);
    expect(longFired).toBe(false);
    long.disarm();
  });

  it('never fires a disarmed deadline, even one queued behind a slower call', async () => {
    let slowFired = false;
    let disarmedFired = false;
    const slow = armDeadline(60, () => {
      slowFired = true;
    });
    armDeadline(40, () => {}).disarm();
    const d = armDeadline(60, () => {
      disarmedFired = true;
    });
    d.disarm();
    await fired(120); // once this later one has fired, every deadline above has passed
    expect(slowFired).toBe(true);
    expect(disarmedFired).toBe(false);
    slow.disarm();
  });
});
