import type { V1ContainerStatus, V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { podRef, redisWentDown } from '../../operator/controller/pod-refs.ts';

function redisPod(redis: Partial<V1ContainerStatus> | undefined, extra: Partial<V1Pod> = {}) {
  return {
    metadata: {
      name: 'c-shard-1-0',
      labels: {
        'app.kubernetes.io/component': 'redis',
        'tiercache.io/shard': '1',
        'controller-revision-hash': 'r1',
      },
      ...extra.metadata,
    },
    spec: { containers: [], nodeName: 'node-a' },
    status: {
      podIP: '127.0.10.5',
      conditions: [{ type: 'Ready', status: 'True' }],
      containerStatuses: redis
        ? [{ name: 'redis', image: 'redis', imageID: '', ready: true, restartCount: 0, ...redis }]
        : [],
    },
  } as V1Pod;
}

const exited = { terminated: { exitCode: 137, reason: 'Error' } } as const;

describe('a pod event that says Redis went down (the crash fast path)', () => {
  it('fires when the container exited and waits to restart', () => {
    const pod = redisPod({
      state: { waiting: { reason: 'CrashLoopBackOff' } },
      lastState: exited,
      ready: false,
      restartCount: 1,
    });
    expect(redisWentDown(pod, false)).toBe(true);
  });

  it('fires when it already restarted but is not Ready (a new, empty node)', () => {
    const pod = redisPod({
      state: { running: {} },
      lastState: exited,
      ready: false,
      restartCount: 1,
    });
    expect(redisWentDown(pod, false)).toBe(true);
  });

  it('fires when the pod is being deleted or is gone', () => {
    const running = redisPod({ state: { running: {} } });
    expect(redisWentDown(running, true)).toBe(true);
    const deleting = redisPod(
      { state: { running: {} } },
      { metadata: { deletionTimestamp: new Date() } },
    );
    expect(redisWentDown({ ...deleting }, false)).toBe(true);
  });

  it('stays quiet for a new pod starting, a healthy restarted one, and proxy pods', () => {
    expect(
      redisWentDown(redisPod({ state: { waiting: { reason: 'ContainerCreating' } } }), false),
    ).toBe(false);
    expect(redisWentDown(redisPod(undefined), false)).toBe(false);
    const recovered = redisPod({ state: { running: {} }, lastState: exited, restartCount: 1 });
    expect(redisWentDown(recovered, false)).toBe(false);
    const proxy = redisPod({ state: { waiting: {} }, lastState: exited });
    proxy.metadata!.labels!['app.kubernetes.io/component'] = 'proxy';
    expect(redisWentDown(proxy, true)).toBe(false);
  });
});

describe('podRef', () => {
  it('reads shard, ordinal, address, readiness, revision and failure domain', () => {
    const ref = podRef(
      redisPod({ state: { running: {} } }),
      new Map([['1', 'r2']]),
      new Map([['node-a', 'zone-a']]),
    );
    expect(ref).toEqual({
      name: 'c-shard-1-0',
      shard: 1,
      ordinal: 0,
      addr: '127.0.10.5:6379',
      ready: true,
      running: true,
      terminating: false,
      outdated: true,
      domain: 'zone-a',
    });
  });

  it('brackets an IPv6 pod IP in the address, as the Redis planners parse it', () => {
    const pod = redisPod({ state: { running: {} } });
    pod.status!.podIP = 'fd00:10::5';
    expect(podRef(pod, new Map(), new Map()).addr).toBe('[fd00:10::5]:6379');
  });
});
