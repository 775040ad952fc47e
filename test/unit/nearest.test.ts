import { describe, expect, it } from 'vitest';
import { NodeLatencies } from '../../proxy/cache/nearest.ts';

const id = (s: string) => s;

describe('nearest reads: which copy of a slot a read goes to', () => {
  it('is the one with the lowest measured latency, the master while none is known', () => {
    const l = new NodeLatencies();
    const slot = ['master:1', 'replica:2', 'replica:3'];
    expect(l.pick(slot, id)).toBe('master:1');
    l.record('master:1', 41);
    l.record('replica:2', 0.4);
    expect(l.pick(slot, id)).toBe('replica:2');
    // A replica whose PING failed is never chosen; with every copy down, the master.
    l.unreachable('replica:2');
    expect(l.pick(slot, id)).toBe('master:1');
    l.record('replica:3', 0.6);
    expect(l.pick(slot, id)).toBe('replica:3');
    for (const n of slot) l.unreachable(n);
    expect(l.pick(slot, id)).toBe('master:1');
    // A connection the client dropped (undefined) is passed over, even in the master's place.
    expect(l.pick([undefined, 'replica:3'], id)).toBe('replica:3');
  });

  it('follows a latency that changes, and forgets nodes the client no longer holds', () => {
    const l = new NodeLatencies();
    l.record('a:1', 1);
    l.record('b:2', 5);
    expect(l.pick(['a:1', 'b:2'], id)).toBe('a:1');
    // A node that became slow (the weight of the newest PING moves it over in a few rounds).
    for (let i = 0; i < 10; i++) l.record('a:1', 50);
    expect(l.pick(['a:1', 'b:2'], id)).toBe('b:2');
    // A node gone from the client: its figure goes, and a failed PING shows as null.
    l.unreachable('b:2');
    l.keepOnly(new Set(['b:2']));
    expect(l.snapshot()).toEqual({ 'b:2': null });
  });
});
