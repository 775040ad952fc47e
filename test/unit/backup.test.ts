/**
 * The pure parts of backups: which node each shard's snapshot comes from, when a scheduled
 * backup is due and what it is called, the Job that takes or restores one, and Redis's CRC-64.
 */
import { describe, expect, it } from 'vitest';
import { crc64 } from '../../lib/redis/crc64.ts';
import type { CacheCluster } from '../../operator/api/types.ts';
import { lzfDecompress } from '../../operator/backup/rdb-reader.ts';
import { chooseSources } from '../../operator/backup/sources.ts';
import {
  parseSchedule,
  scheduleDecision,
  scheduledBackupName,
} from '../../operator/controller/backup-schedule.ts';
import { type BackupJobInputs, backupJob, placeArgs } from '../../operator/resources/backup-job.ts';
import { addr, formed, view } from '../helpers/cluster-view.ts';

describe('chooseSources', () => {
  it('takes each shard from its most caught-up in-sync replica', () => {
    const nodes = formed(3, 2);
    nodes.find((n) => n.id === 'n02')!.offset = 500;
    nodes.find((n) => n.id === 'n12')!.linkDown = true;
    nodes.find((n) => n.id === 'n21')!.quarantined = true;
    const sources = chooseSources(view(nodes));
    expect(sources.map((s) => [s.shard, s.addr, s.role])).toEqual([
      [0, addr(0, 2), 'replica'],
      [1, addr(1, 1), 'replica'],
      [2, addr(2, 2), 'replica'],
    ]);
    expect(sources.map((s) => s.masterAddr)).toEqual([addr(0, 0), addr(1, 0), addr(2, 0)]);
  });

  it('falls back to the master of a shard with no replica in sync', () => {
    const nodes = formed(2, 1);
    nodes.find((n) => n.id === 'n11')!.linkDown = true;
    expect(chooseSources(view(nodes)).map((s) => s.role)).toEqual(['replica', 'master']);
    expect(chooseSources(view(formed(2, 0))).map((s) => s.role)).toEqual(['master', 'master']);
  });
});

describe('the backup schedule', () => {
  const now = new Date('2026-12-07T13:00:25Z');

  it('is due at the latest scheduled time since the last backup, once', () => {
    const every20s = scheduleDecision('*/20 * * * * *', new Date('2026-12-07T12:59:00Z'), now);
    expect(every20s.due?.toISOString()).toBe('2026-12-07T13:00:20.000Z'); // missed times collapse
    expect(every20s.next?.toISOString()).toBe('2026-12-07T13:00:40.000Z');
    expect(scheduleDecision('*/20 * * * * *', every20s.due!, now).due).toBeUndefined();
  });

  it('reads five-field schedules in UTC', () => {
    const d = scheduleDecision('0 */6 * * *', new Date('2026-12-06T00:00:00Z'), now);
    expect(d.due?.toISOString()).toBe('2026-12-07T12:00:00.000Z');
    expect(d.next?.toISOString()).toBe('2026-12-07T18:00:00.000Z');
  });

  it('refuses what is not a cron schedule, naming the field', () => {
    expect(() => parseSchedule('every hour')).toThrow(
      /backup.schedule "every hour" is not a cron schedule/,
    );
  });

  it('names the backup of a scheduled time the same way every time', () => {
    expect(scheduledBackupName('cache', now)).toBe('cache-20261207-130025');
  });
});

/** The cluster the Jobs talk to. */
const cc = {
  apiVersion: 'tiercache.io/v1alpha1',
  kind: 'CacheCluster',
  metadata: { name: 'cache', namespace: 'ns', uid: 'u1' },
  spec: {},
} as unknown as CacheCluster;

describe('backupJob', () => {
  const owner = {
    apiVersion: 'tiercache.io/v1alpha1',
    kind: 'CacheClusterBackup',
    name: 'b',
    uid: 'u2',
  };
  const jobOf = (o: Partial<BackupJobInputs>) =>
    backupJob({
      cc,
      jobName: 'b-backup',
      owner,
      image: 'tiercache:1',
      command: ['backup', '--name', 'b'],
      place: { claimName: 'cache-backups' },
      backupsOf: 'cache',
      readOnly: false,
      tlsSecretName: undefined,
      ...o,
    });

  it('runs the CLI against the cluster with its password and claim, and reports through the termination message', () => {
    const job = jobOf({});
    const pod = job.spec!.template.spec!;
    const c = pod.containers[0]!;
    expect(c.args).toEqual([
      'cluster',
      'backup',
      '--name',
      'b',
      '--dir',
      '/backups/cache',
      'cache-redis.ns.svc:6379',
      '--result-file',
      '/dev/termination-log',
    ]);
    expect(c.env).toEqual([
      {
        name: 'REDIS_PASSWORD',
        valueFrom: { secretKeyRef: { name: 'cache-redis-auth', key: 'password' } },
      },
    ]);
    expect(c.terminationMessagePath).toBe('/dev/termination-log');
    expect(pod.volumes).toEqual([
      { name: 'backups', persistentVolumeClaim: { claimName: 'cache-backups', readOnly: false } },
    ]);
    expect(pod.restartPolicy).toBe('Never');
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(job.metadata!.ownerReferences).toEqual([owner]);
    expect(job.spec!.backoffLimit).toBe(0);
  });

  it("signs in as the operator's own user when the cluster has it", () => {
    const withUser = {
      ...cc,
      spec: { redis: { auth: { users: { operator: true } } } },
    } as unknown as CacheCluster;
    expect(jobOf({ cc: withUser }).spec!.template.spec!.containers[0]!.env).toEqual([
      { name: 'REDIS_USERNAME', value: 'tiercache-operator' },
      {
        name: 'REDIS_PASSWORD',
        valueFrom: { secretKeyRef: { name: 'cache-redis-operator', key: 'password' } },
      },
    ]);
  });

  it('over TLS gets the CA alone and the name the certificates carry; a restore mounts the claim read-only', () => {
    const job = jobOf({
      command: ['restore', '--name', 'b'],
      place: { claimName: 'old-backups' },
      backupsOf: 'old',
      readOnly: true,
      tlsSecretName: 'redis-tls',
    });
    const pod = job.spec!.template.spec!;
    expect(pod.containers[0]!.args).toContain('--tls-server-name');
    expect(pod.containers[0]!.args).toContain('cache-redis.ns.svc');
    expect(pod.volumes![1]).toEqual({
      name: 'redis-ca',
      secret: { secretName: 'redis-tls', items: [{ key: 'ca.crt', path: 'ca.crt' }] },
    });
    expect(pod.containers[0]!.volumeMounts![0]).toMatchObject({
      mountPath: '/backups',
      readOnly: true,
    });
  });
});

describe('backupJob to S3', () => {
  const s3 = {
    bucket: 'team-backups',
    prefix: 'redis/',
    endpoint: 'http://minio.storage:9000',
    credentialsSecret: 's3-creds',
  };

  it('names the bucket and the cluster’s prefix, takes the credentials from their Secret, and writes to a scratch directory', () => {
    expect(placeArgs({ s3 }, 'cache')).toEqual([
      '--s3-bucket',
      'team-backups',
      '--s3-prefix',
      'redis/cache',
      '--s3-endpoint',
      'http://minio.storage:9000',
    ]);
    expect(placeArgs({ s3: { bucket: 'b', credentialsSecret: 'c' } }, 'cache')).toEqual([
      '--s3-bucket',
      'b',
      '--s3-prefix',
      'cache',
    ]);
    const job = backupJob({
      cc,
      jobName: 'b-backup',
      owner: { apiVersion: 'v', kind: 'k', name: 'b', uid: 'u' },
      image: 'tiercache:1',
      command: ['backup', '--name', 'b'],
      place: { s3 },
      backupsOf: 'cache',
      readOnly: false,
      tlsSecretName: undefined,
    });
    const pod = job.spec!.template.spec!;
    expect(pod.volumes).toEqual([{ name: 'scratch', emptyDir: {} }]);
    expect(pod.containers[0]!.volumeMounts).toEqual([{ name: 'scratch', mountPath: '/tmp' }]);
    expect(pod.containers[0]!.env!.map((e) => [e.name, e.valueFrom?.secretKeyRef])).toEqual([
      ['REDIS_PASSWORD', { name: 'cache-redis-auth', key: 'password' }],
      ['AWS_ACCESS_KEY_ID', { name: 's3-creds', key: 'accessKeyId' }],
      ['AWS_SECRET_ACCESS_KEY', { name: 's3-creds', key: 'secretAccessKey' }],
    ]);
  });
});

describe('RDB pieces', () => {
  it('CRC-64 is Redis’s (Jones), check value of "123456789"', () => {
    expect(crc64(Buffer.from('123456789')).toString(16)).toBe('e9c6d914c4b8d9ca');
  });

  it('LZF decompresses back-references and refuses bad data', () => {
    // "abcabcabc": a literal run of 3, then a back-reference of length 6 at distance 3.
    const compressed = Buffer.from([2, 0x61, 0x62, 0x63, (4 << 5) | 0, 2]);
    expect(lzfDecompress(compressed, 9).toString()).toBe('abcabcabc');
    expect(() => lzfDecompress(Buffer.from([0x40, 0x05]), 9)).toThrow(/bad LZF/);
  });
});
