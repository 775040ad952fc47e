/** A writer to one Redis node through the operator's Connections, for tests on real servers. */
import type { Connections } from '../../operator/redis/connections.ts';

/**
 * Writes w:0, w:1, … to `addr` one after another until stopped, through whatever `conns()`
 * returns at each write (a test may switch logins meanwhile). `stop()` settles after the last
 * write: `acked` writes were acknowledged, `failed` were refused or went unanswered.
 */
export function writeUntilStopped(conns: () => Connections, addr: string) {
  let stop = false;
  let acked = 0;
  let failed = 0;
  const done = (async () => {
    for (let i = 0; !stop; i++) {
      try {
        await conns().call(addr, 'SET', `w:${i}`, String(i));
        acked = i + 1;
      } catch {
        failed++;
        // A node gone (a failed test stops them) must not spin this loop.
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  })();
  return {
    async stop() {
      stop = true;
      await done;
      return { acked, failed };
    },
  };
}
