/**
 * A change to a running CacheCluster with everything counted around it: keys written before,
 * a writer whose acknowledged writes are looked for afterwards, and traffic through its two
 * regional proxies — what the day-2 and TLS suites check after every change.
 */
import { expect } from 'vitest';
import type { Mode } from './e2e-cachecluster.ts';
import { startProxyTraffic } from './e2e-proxies.ts';
import { waitFor } from './wait.ts';

/** Keys written before each change, looked for after it. */
export const BEFORE_KEYS = 2000;

export type Outcome = Awaited<ReturnType<typeof around>>;

/**
 * Runs a writer and proxy traffic around `change`, waits until `done` (then Ready for the
 * generation), and counts what was lost.
 */
export async function around(
  m: Mode,
  name: string,
  change: () => void,
  done: { what: string; when: () => boolean | Promise<boolean> },
) {
  await m.cc.writeKeys(`${name}:before`, BEFORE_KEYS);
  const traffic = startProxyTraffic(m.cc.ns);
  const writer = m.cc.startAckedWriter(`${name}:acked`);
  await waitFor(
    'the writer to be writing',
    async () => (await m.cc.missing([`${name}:acked:20`])).length === 0,
    30_000,
    50,
  );
  change();
  await waitFor(`${m.cc.ns}: ${done.what}`, done.when, 180_000, 500);
  await m.cc.waitReadyWithReplicas();
  const w = await writer.stop();
  const proxy = await traffic.stop();
  return {
    ackedLost: await m.cc.missing(
      w.acked.map((i) => `${name}:acked:${i}`),
      w.acked.map((i) => String(i)),
    ),
    beforeMissing: await m.cc.missingKeys(`${name}:before`, BEFORE_KEYS),
    proxy,
    writes: w.successes,
  };
}

/** Prints what a change cost (counts of lost keys, the proxies' answers, writes) for the log. */
export function report(what: string, m: Mode, o: Outcome): void {
  console.log(
    `${what} (${m.label}): ${JSON.stringify({ ...o, ackedLost: o.ackedLost.length, beforeMissing: o.beforeMissing.length })}`,
  );
}

/**
 * No key lost, and every request the proxies got was answered 200 through their roll (a pod
 * being replaced keeps serving until it is out of the Service's endpoints).
 */
export function expectNothingLost(m: Mode, o: Outcome): void {
  expect(o.ackedLost, m.label).toEqual([]);
  expect(o.beforeMissing, m.label).toEqual([]);
  expect(o.proxy.byStatus, m.label).toEqual({});
  expect(o.proxy.total, m.label).toBeGreaterThan(0);
}
