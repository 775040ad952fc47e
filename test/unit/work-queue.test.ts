import { describe, expect, it } from 'vitest';
import { WorkQueue } from '../../operator/runtime/queue.ts';
import { waitFor } from '../helpers/wait.ts';

describe('WorkQueue', () => {
  it('handles a key once however often it is added while queued', async () => {
    const q = new WorkQueue();
    const seen: string[] = [];
    q.add('a');
    q.add('a');
    q.add('b');
    const running = q.run(async (k) => {
      seen.push(k);
    }, 2);
    await waitFor('both keys', () => seen.length === 2);
    q.stop();
    await running;
    expect(seen.sort()).toEqual(['a', 'b']);
  });

  it('never runs one key on two workers, and runs it again when added meanwhile', async () => {
    const q = new WorkQueue();
    let inFlight = 0;
    let maxInFlight = 0;
    let runs = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const running = q.run(async () => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      runs++;
      if (runs === 1) await gate;
      inFlight--;
    }, 3);
    q.add('k');
    await waitFor('first run', () => runs === 1);
    q.add('k'); // while in flight
    q.add('k');
    release();
    await waitFor('second run', () => runs === 2);
    q.stop();
    await running;
    expect(maxInFlight).toBe(1);
    expect(runs).toBe(2);
  });

  it('backs off exponentially on failures and starts over after a success', () => {
    const q = new WorkQueue();
    const first = q.retry('k');
    q.forget('another key'); // forgetting another key changes nothing for this one
    expect([first, q.retry('k'), q.retry('k')]).toEqual([200, 400, 800]);
    q.forget('k');
    expect(q.retry('k')).toBe(200);
    q.stop();
  });
});
