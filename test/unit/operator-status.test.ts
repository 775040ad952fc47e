import { describe, expect, it } from 'vitest';
import type { CacheCluster } from '../../operator/api/types.ts';
import { withDefaults } from '../../operator/api/types.ts';
import { describeError } from '../../operator/controller/errors.ts';
import { buildStatus, failedStatus } from '../../operator/controller/status.ts';
import { formed, pods, view } from '../helpers/cluster-view.ts';

const cc = (generation: number, status?: CacheCluster['status']): CacheCluster =>
  ({
    apiVersion: 'tiercache.io/v1alpha1',
    kind: 'CacheCluster',
    metadata: { name: 'cache', namespace: 'ns', generation },
    spec: { redis: { shards: 3, replicasPerShard: 1 }, proxies: [] },
    ...(status ? { status } : {}),
  }) as unknown as CacheCluster;

const now = new Date('2026-12-02T00:00:00Z');
const conditionsOf = (s: { conditions?: { type: string; status: string; reason: string }[] }) =>
  Object.fromEntries((s.conditions ?? []).map((c) => [c.type, `${c.status} ${c.reason}`]));

function statusOf(
  nodes = formed(3),
  extra: { applyFailures?: string[]; unreachable?: { addr: string; error: string }[] } = {},
) {
  const v = view(nodes);
  if (extra.unreachable) v.unreachable.push(...extra.unreachable);
  const c = cc(4);
  return buildStatus({
    cc: c,
    spec: withDefaults(c.spec),
    pods: pods(3),
    shards: 3,
    view: v,
    step: { kind: 'settled' },
    proxies: [],
    ...(extra.applyFailures ? { applyFailures: extra.applyFailures } : {}),
    now,
  });
}

describe('CacheCluster status', () => {
  it('is Ready for its generation when every slot is served and nothing failed', () => {
    const s = statusOf();
    expect(s.observedGeneration).toBe(4);
    expect(conditionsOf(s)).toEqual({
      Ready: 'True ClusterReady',
      Progressing: 'False Settled',
      Degraded: 'False AsExpected',
    });
  });

  it('says ApplyFailed, naming the object and the API server’s reason, when an apply was refused', () => {
    const s = statusOf(formed(3), {
      applyFailures: ['Deployment cache-proxy-tmdb: exceeded quota: q (Forbidden)'],
    });
    expect(conditionsOf(s)).toMatchObject({
      Ready: 'False ApplyFailed',
      Degraded: 'True ApplyFailed',
    });
    expect(s.conditions!.find((c) => c.type === 'Degraded')!.message).toMatch(
      /Deployment cache-proxy-tmdb: exceeded quota/,
    );
  });

  it('says AuthFailed, not "no master", when nodes refuse the operator’s password', () => {
    const s = statusOf([], {
      unreachable: formed(3).map((n) => ({
        addr: n.addr,
        error: 'WRONGPASS invalid username-password pair or user is disabled.',
      })),
    });
    expect(conditionsOf(s)).toMatchObject({
      Ready: 'False AuthFailed',
      Degraded: 'True AuthFailed',
    });
    expect(s.conditions!.find((c) => c.type === 'Ready')!.message).toMatch(
      /6 of 6 Redis nodes refuse the operator's password/,
    );
  });

  it('after a failed reconcile: Ready False for the current generation, the rest of the status kept', () => {
    const before = statusOf();
    const s = failedStatus(cc(5, before), 'ReconcileFailed', 'boom', now);
    expect(s.observedGeneration).toBe(5);
    expect(s.shards).toEqual(before.shards);
    expect(conditionsOf(s)).toEqual({
      Ready: 'False ReconcileFailed',
      Progressing: 'True Retrying',
      Degraded: 'True ReconcileFailed',
    });
    expect(s.conditions!.every((c) => c.observedGeneration === 5)).toBe(true);
  });
});

describe('describeError', () => {
  it('gives the API server’s Status message, not the request or its headers', () => {
    const err = Object.assign(new Error('HTTP-Code: 403 Headers: {"authorization":"Bearer x"}'), {
      code: 403,
      body: JSON.stringify({
        kind: 'Status',
        reason: 'Forbidden',
        message: 'deployments.apps "p" is forbidden: exceeded quota: q',
      }),
    });
    expect(describeError(err)).toBe(
      'deployments.apps "p" is forbidden: exceeded quota: q (Forbidden)',
    );
  });

  it('keeps a plain error’s message on one short line', () => {
    expect(describeError(new Error('a\n  b'))).toBe('a b');
    expect(describeError(new Error('x'.repeat(2000))).length).toBeLessThan(700);
  });
});
