/**
 * Backups and restore of one CacheCluster, a phase of its reconcile: the backup claim, the
 * schedule (a CacheClusterBackup per scheduled time, the oldest beyond `keep` deleted), a Job
 * per CacheClusterBackup of this cluster and its status, and spec.restore's Job and progress.
 * Backups and the restore start only on a settled cluster; a Job that fails is reported,
 * not retried (a new CacheClusterBackup is the retry).
 */
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import type { Logger } from '../../lib/log.ts';
import {
  API_VERSION,
  BACKUP_KIND,
  BACKUP_PLURAL,
  type BackupStatus,
  type CacheCluster,
  type CacheClusterBackup,
  type CacheClusterSpec,
  GROUP,
  type RestoreStatus,
  VERSION,
} from '../api/types.ts';
import { type BackupPlace, backupJob } from '../resources/backup-job.ts';
import { LABEL_CLUSTER, LABEL_SCHEDULED, names } from '../resources/names.ts';
import { controllerReference, ownerReference } from '../resources/owner.ts';
import { isConflict, isNotFound, type Kube } from '../runtime/kube.ts';
import { jobState, startJob } from './backup-jobs.ts';
import { scheduleDecision, scheduledBackupName } from './backup-schedule.ts';
import type { EventRecorder } from './events.ts';

export interface BackupsContext {
  kube: Kube;
  cc: CacheCluster;
  spec: CacheClusterSpec;
  image: string;
  events: EventRecorder;
  log: Logger;
  /** The cluster is formed and healthy: Jobs may start. */
  settled: boolean;
  /** Keys the masters hold now (a restore's progress). */
  clusterKeys: number;
  tlsSecretName: string | undefined;
  now?: Date;
}

export interface BackupsOutcome {
  /** status.backup: the schedule's last run and the backup that finished last. */
  backup: BackupStatus | undefined;
  restore: RestoreStatus | undefined;
  /** Look again this soon (a Job running, a scheduled time coming). */
  requeueAfterMs: number | undefined;
}

const RUNNING_POLL_MS = 3000;
const MAX_SCHEDULE_WAIT_MS = 60_000;

const backupApi = { group: GROUP, version: VERSION, plural: BACKUP_PLURAL } as const;

/** Where this cluster's backups go now: its bucket, else its claim (by default <cc>-backups). */
const placeOf = (cc: CacheCluster, spec: CacheClusterSpec): BackupPlace =>
  spec.backup?.s3
    ? { s3: spec.backup.s3 }
    : { claimName: spec.backup?.claimName || names.backupClaim(cc.metadata.name) };

/** Where a backup was stored, as its status recorded it. */
function backupPlaceOf(b: CacheClusterBackup): BackupPlace | undefined {
  if (b.status?.s3) return { s3: b.status.s3 };
  if (b.status?.claimName) return { claimName: b.status.claimName };
  return undefined;
}

export async function reconcileBackups(ctx: BackupsContext): Promise<BackupsOutcome> {
  const { kube, cc, spec } = ctx;
  const now = ctx.now ?? new Date();
  const backups = (
    (await kube.custom.listNamespacedCustomObject({
      ...backupApi,
      namespace: cc.metadata.namespace,
    })) as { items: CacheClusterBackup[] }
  ).items.filter((b) => b.spec.cacheCluster === cc.metadata.name);
  let requeue: number | undefined;
  const soon = (ms: number) => {
    requeue = Math.min(requeue ?? ms, ms);
  };

  const schedule = await runSchedule(ctx, backups, now, soon);
  for (const b of backups) {
    if (b.status?.phase === 'Completed' || b.status?.phase === 'Failed') continue;
    if (await advanceBackup(ctx, b)) soon(RUNNING_POLL_MS);
  }
  await pruneScheduledObjects(ctx, backups);
  const restore = spec.restore ? await advanceRestore(ctx, soon) : undefined;
  const lastFinished = lastFinishedOf(backups) ?? cc.status?.backup?.lastFinished;
  const backup = schedule || lastFinished ? { ...schedule, lastFinished } : undefined;
  return { backup, restore, requeueAfterMs: requeue };
}

/** Backups by completion time, the latest first. */
const newestFirst = (backups: CacheClusterBackup[]) =>
  [...backups].sort((a, b) =>
    (b.status?.completionTime ?? '').localeCompare(a.status?.completionTime ?? ''),
  );

/** The cluster's backup that finished last (as listed at the start of this reconcile). */
function lastFinishedOf(backups: CacheClusterBackup[]): BackupStatus['lastFinished'] {
  const b = newestFirst(
    backups.filter((x) => x.status?.phase === 'Completed' || x.status?.phase === 'Failed'),
  )[0];
  if (!b?.status) return undefined;
  const { phase, completionTime, keys, bytes } = b.status;
  return { name: b.metadata.name, phase: phase!, completionTime, keys, bytes };
}

/** The claim backups go to: made when missing, with no owner (backups outlive the cluster). */
async function ensureClaim({ kube, cc, spec }: BackupsContext, name: string): Promise<void> {
  const namespace = cc.metadata.namespace;
  try {
    await kube.core.readNamespacedPersistentVolumeClaim({ name, namespace });
    return;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const storageClassName = spec.backup?.storageClassName;
  try {
    await kube.core.createNamespacedPersistentVolumeClaim({
      namespace,
      body: {
        metadata: {
          name,
          namespace,
          labels: { [LABEL_CLUSTER]: cc.metadata.name, 'app.kubernetes.io/name': 'tiercache' },
        },
        spec: {
          accessModes: ['ReadWriteOnce'],
          resources: { requests: { storage: spec.backup?.size ?? '1Gi' } },
          ...(storageClassName ? { storageClassName } : {}),
        },
      },
    });
  } catch (err) {
    if (!isConflict(err)) throw err;
  }
}

async function runSchedule(
  ctx: BackupsContext,
  backups: CacheClusterBackup[],
  now: Date,
  soon: (ms: number) => void,
): Promise<BackupStatus | undefined> {
  const { cc, spec } = ctx;
  const schedule = spec.backup?.schedule;
  // Without a schedule (or one taken away) what the last one did stays on record.
  if (!schedule) return cc.status?.backup;
  const previous = cc.status?.backup ?? {};
  let decision: ReturnType<typeof scheduleDecision>;
  try {
    const since = new Date(
      previous.lastScheduleTime ?? cc.metadata.creationTimestamp ?? now.toISOString(),
    );
    decision = scheduleDecision(schedule, since, now);
  } catch (err) {
    return { ...previous, message: (err as Error).message };
  }
  if (decision.next)
    soon(Math.min(MAX_SCHEDULE_WAIT_MS, decision.next.getTime() - now.getTime() + 50));
  if (!decision.due) return { ...previous, message: undefined };
  const name = scheduledBackupName(cc.metadata.name, decision.due);
  if (!backups.some((b) => b.metadata.name === name)) {
    const body: CacheClusterBackup = {
      apiVersion: API_VERSION,
      kind: BACKUP_KIND,
      metadata: {
        name,
        namespace: cc.metadata.namespace,
        labels: { [LABEL_CLUSTER]: cc.metadata.name, [LABEL_SCHEDULED]: 'true' },
      },
      spec: { cacheCluster: cc.metadata.name },
    };
    try {
      await ctx.kube.custom.createNamespacedCustomObject({
        ...backupApi,
        namespace: cc.metadata.namespace,
        body,
      });
    } catch (err) {
      if (!isConflict(err)) throw err;
    }
    soon(0);
  }
  return { lastScheduleTime: decision.due.toISOString(), lastBackup: name };
}

async function patchBackupStatus(
  kube: Kube,
  b: CacheClusterBackup,
  status: NonNullable<CacheClusterBackup['status']>,
): Promise<void> {
  await kube.custom.patchNamespacedCustomObjectStatus(
    { ...backupApi, namespace: b.metadata.namespace, name: b.metadata.name, body: { status } },
    setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
  );
}

/** Starts or follows one backup's Job; true while it is not finished. */
async function advanceBackup(ctx: BackupsContext, b: CacheClusterBackup): Promise<boolean> {
  const { kube, cc, spec } = ctx;
  const jobName = names.backupJob(b.metadata.name);
  const scheduled = b.metadata.labels?.[LABEL_SCHEDULED] === 'true';
  const found = await jobState(kube, cc.metadata.namespace, jobName);
  if (found.state === 'absent') {
    if (!ctx.settled) {
      if (b.status?.phase !== 'Pending')
        await patchBackupStatus(kube, b, {
          phase: 'Pending',
          message: 'waiting for the cluster to be settled',
        });
      return true;
    }
    const place = placeOf(cc, spec);
    // The claim is made when its first backup needs it, not looked up on every reconcile.
    if ('claimName' in place) await ensureClaim(ctx, place.claimName);
    await startJob(
      kube,
      backupJob({
        cc,
        jobName,
        owner: controllerReference(BACKUP_KIND, b.metadata),
        image: ctx.image,
        command: [
          'backup',
          '--name',
          b.metadata.name,
          '--cluster',
          `${cc.metadata.namespace}/${cc.metadata.name}`,
          ...(scheduled ? ['--scheduled', '--keep', String(spec.backup?.keep ?? 7)] : []),
        ],
        place,
        backupsOf: cc.metadata.name,
        readOnly: false,
        tlsSecretName: ctx.tlsSecretName,
      }),
    );
    await patchBackupStatus(kube, b, {
      phase: 'Running',
      scheduled,
      ...place,
      path: `${cc.metadata.name}/${b.metadata.name}`,
      startTime: new Date().toISOString(),
      message: '',
    });
    return true;
  }
  if (found.state === 'running') return true;
  if (found.state === 'failed') {
    await patchBackupStatus(kube, b, {
      phase: 'Failed',
      completionTime: new Date().toISOString(),
      message: found.message,
    });
    await ctx.events.record(cc, 'Warning', 'BackupFailed', `${b.metadata.name}: ${found.message}`);
    return false;
  }
  const r = found.result as {
    keys?: number;
    bytes?: number;
    shards?: NonNullable<CacheClusterBackup['status']>['shards'];
    pruned?: string[];
  };
  await patchBackupStatus(kube, b, {
    phase: 'Completed',
    // Where it went, again: the operator may have stopped between starting the Job and saying so.
    ...(backupPlaceOf(b) ? {} : placeOf(cc, spec)),
    path: `${cc.metadata.name}/${b.metadata.name}`,
    scheduled,
    ...(b.status?.startTime ? {} : { startTime: found.startTime }),
    completionTime: new Date().toISOString(),
    keys: r.keys,
    bytes: r.bytes,
    shards: (r.shards ?? []).map(({ file, source, role, slots, keys, bytes }) => ({
      file,
      source,
      role,
      slots,
      keys,
      bytes,
    })),
    message: r.pruned?.length ? `retention deleted the files of ${r.pruned.join(', ')}` : '',
  });
  await ctx.events.record(
    cc,
    'Normal',
    'BackupCompleted',
    `${b.metadata.name}: ${r.keys ?? '?'} keys, ${r.bytes ?? '?'} bytes`,
  );
  return false;
}

/**
 * Retention of the objects: the scheduled backups beyond `keep`, oldest first, whose files the
 * newest scheduled Job has already deleted (it keeps the same `keep` newest).
 */
async function pruneScheduledObjects(
  ctx: BackupsContext,
  backups: CacheClusterBackup[],
): Promise<void> {
  const keep = ctx.spec.backup?.keep;
  if (!keep) return;
  const done = newestFirst(
    backups.filter(
      (b) => b.metadata.labels?.[LABEL_SCHEDULED] === 'true' && b.status?.phase === 'Completed',
    ),
  );
  for (const old of done.slice(keep)) {
    try {
      await ctx.kube.custom.deleteNamespacedCustomObject({
        ...backupApi,
        namespace: old.metadata.namespace,
        name: old.metadata.name,
      });
      ctx.log.info(
        { cacheclusterbackup: old.metadata.name },
        'retention: deleted a scheduled backup',
      );
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
}

async function readBackup(
  kube: Kube,
  namespace: string,
  name: string,
): Promise<CacheClusterBackup | undefined> {
  try {
    return (await kube.custom.getNamespacedCustomObject({
      ...backupApi,
      namespace,
      name,
    })) as CacheClusterBackup;
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

async function advanceRestore(
  ctx: BackupsContext,
  soon: (ms: number) => void,
): Promise<RestoreStatus> {
  const { kube, cc } = ctx;
  const backupName = ctx.spec.restore!.backup;
  const previous = cc.status?.restore;
  if (
    previous?.backup === backupName &&
    (previous.phase === 'Completed' || previous.phase === 'Failed')
  )
    return previous;
  const pending = (message: string): RestoreStatus => {
    soon(RUNNING_POLL_MS);
    return { backup: backupName, phase: 'Pending', message };
  };
  const jobName = names.restoreJob(cc.metadata.name);
  const found = await jobState(kube, cc.metadata.namespace, jobName);
  if (found.state === 'absent') {
    const backup = await readBackup(kube, cc.metadata.namespace, backupName);
    if (!backup) return pending(`waiting for the CacheClusterBackup ${backupName}`);
    if (backup.status?.phase === 'Failed')
      return { backup: backupName, phase: 'Failed', message: `the backup ${backupName} failed` };
    const place = backupPlaceOf(backup);
    if (backup.status?.phase !== 'Completed' || !place)
      return pending(`waiting for the backup ${backupName} to complete`);
    if (!ctx.settled) return pending('waiting for the cluster to be formed');
    await startJob(
      kube,
      backupJob({
        cc,
        jobName,
        owner: ownerReference(cc),
        image: ctx.image,
        command: ['restore', '--name', backupName],
        place,
        backupsOf: backup.spec.cacheCluster,
        readOnly: true,
        tlsSecretName: ctx.tlsSecretName,
      }),
    );
    soon(RUNNING_POLL_MS);
    return {
      backup: backupName,
      phase: 'Running',
      keysTotal: backup.status.keys ?? 0,
      keysRestored: 0,
      startTime: new Date().toISOString(),
    };
  }
  // The Job's own start time: the status written when it was made may not be seen yet.
  const base = { ...(previous ?? {}), backup: backupName, startTime: found.startTime };
  if (found.state === 'running') {
    soon(RUNNING_POLL_MS);
    return {
      ...base,
      phase: 'Running',
      keysRestored: Math.min(ctx.clusterKeys, base.keysTotal ?? ctx.clusterKeys),
    };
  }
  const completionTime = new Date().toISOString();
  if (found.state === 'failed') {
    await ctx.events.record(cc, 'Warning', 'RestoreFailed', `${backupName}: ${found.message}`);
    return { ...base, phase: 'Failed', completionTime, message: found.message };
  }
  const r = found.result as { total: number; restored: number; existing: number; expired: number };
  await ctx.events.record(
    cc,
    'Normal',
    'RestoreCompleted',
    `${backupName}: restored ${r.restored} of ${r.total} keys (${r.existing} already there, ${r.expired} expired)`,
  );
  return {
    ...base,
    phase: 'Completed',
    keysTotal: r.total,
    keysRestored: r.restored,
    keysExisting: r.existing,
    keysExpired: r.expired,
    completionTime,
    message: '',
  };
}
