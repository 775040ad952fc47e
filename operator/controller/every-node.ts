/** One step run on every node at once, with what failed where (I/O). */
import { describeError } from './errors.ts';

/**
 * Runs `step` on every address at once. Returns the failures, each naming its node and `what`
 * failed (never the step's arguments, which may hold a password).
 */
export async function failuresOnEvery(
  addrs: string[],
  what: string,
  step: (addr: string) => Promise<unknown>,
): Promise<string[]> {
  const failed = await Promise.all(
    addrs.map((addr) =>
      step(addr).then(
        () => undefined,
        (err) => `${addr}: ${what} failed (${describeError(err)})`,
      ),
    ),
  );
  return failed.filter((f): f is string => f !== undefined);
}
