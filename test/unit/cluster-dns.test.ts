import type { V1Pod, V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { resolve } from '../../hack/local-cluster/pod-runner/dns-records.ts';
import { buildAnswer, parseQuery, TYPE_A } from '../../hack/local-cluster/pod-runner/dns-wire.ts';

function query(name: string, type = TYPE_A): Buffer {
  const labels = name
    .split('.')
    .map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const head = Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(type, 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([head, ...labels, Buffer.from([0]), tail]);
}

const pod = (name: string, ip: string, ready: boolean, labels = { app: 'redis' }): V1Pod => ({
  metadata: { name, namespace: 'default', labels },
  spec: { containers: [], hostname: name, subdomain: 'redis' },
  status: { podIP: ip, conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] },
});
const headless: V1Service = {
  metadata: { name: 'redis', namespace: 'default' },
  spec: { clusterIP: 'None', selector: { app: 'redis' } },
};

describe('cluster DNS records', () => {
  const snapshot = {
    pods: [pod('redis-0', '127.10.1.2', true), pod('redis-1', '127.10.2.2', false)],
    services: [headless],
  };

  it('resolves a Service to its ready pods, in both name forms', () => {
    expect(resolve(snapshot, 'redis.default.svc', 'cluster.local')).toEqual(['127.10.1.2']);
    expect(resolve(snapshot, 'redis.default.svc.cluster.local.', 'cluster.local')).toEqual([
      '127.10.1.2',
    ]);
  });

  it('resolves a pod by hostname and subdomain, ready or not', () => {
    expect(resolve(snapshot, 'redis-1.redis.default.svc.cluster.local', 'cluster.local')).toEqual([
      '127.10.2.2',
    ]);
  });

  it('publishes not-ready pods when the Service asks for it', () => {
    const svc = { ...headless, spec: { ...headless.spec, publishNotReadyAddresses: true } };
    expect(
      resolve({ ...snapshot, services: [svc] }, 'redis.default.svc', 'cluster.local')?.sort(),
    ).toEqual(['127.10.1.2', '127.10.2.2']);
  });

  it('knows nothing of other names', () => {
    expect(resolve(snapshot, 'nope.default.svc', 'cluster.local')).toBeUndefined();
    expect(resolve(snapshot, 'example.com', 'cluster.local')).toBeUndefined();
  });
});

describe('DNS wire format', () => {
  it('parses a query and answers it with A records', () => {
    const q = parseQuery(query('redis.default.svc.cluster.local'))!;
    expect(q).toMatchObject({
      id: 0x1234,
      name: 'redis.default.svc.cluster.local',
      type: TYPE_A,
      recursionDesired: true,
    });
    const answer = buildAnswer(q, ['127.10.1.2', '127.10.2.2'], 1);
    expect(answer.readUInt16BE(0)).toBe(0x1234);
    expect(answer.readUInt16BE(2) & 0x8000).toBe(0x8000); // a response
    expect(answer.readUInt16BE(2) & 0x000f).toBe(0); // NOERROR
    expect(answer.readUInt16BE(6)).toBe(2); // two answers
    expect([...answer.subarray(answer.length - 4)]).toEqual([127, 10, 2, 2]);
  });

  it('answers NXDOMAIN for unknown names and rejects malformed packets', () => {
    const q = parseQuery(query('nope.default.svc'))!;
    expect(buildAnswer(q, undefined, 1).readUInt16BE(2) & 0x000f).toBe(3);
    expect(parseQuery(Buffer.from([1, 2, 3]))).toBeUndefined();
  });
});
