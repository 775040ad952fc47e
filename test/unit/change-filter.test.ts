import { describe, expect, it } from 'vitest';
import { statusOnlyFilter } from '../../operator/controller/change-filter.ts';

const cc = (generation: number, deleting = false) => ({
  metadata: {
    namespace: 'ns',
    name: 'cache',
    generation,
    ...(deleting ? { deletionTimestamp: new Date('2026-12-02T00:00:00Z') } : {}),
  },
});

describe('which CacheCluster events wake a reconcile', () => {
  it('a new generation or a deletion does; the operator’s own status write does not', () => {
    const statusOnly = statusOnlyFilter();
    expect(statusOnly(cc(1), 'add')).toBe(false);
    expect(statusOnly(cc(1), 'update')).toBe(true); // a status write
    expect(statusOnly(cc(2), 'update')).toBe(false); // the spec changed
    expect(statusOnly(cc(2), 'update')).toBe(true);
    expect(statusOnly(cc(2, true), 'update')).toBe(false); // being deleted
    expect(statusOnly(cc(2, true), 'delete')).toBe(false);
    // Re-created under the same name: its first update is news again.
    expect(statusOnly(cc(1), 'add')).toBe(false);
  });

  it('an object never seen (the watch restarted) is reconciled on its first update', () => {
    expect(statusOnlyFilter()(cc(7), 'update')).toBe(false);
  });
});
