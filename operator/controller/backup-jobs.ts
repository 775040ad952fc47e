/**
 * The Jobs behind backups and restores, as the operator sees them: started once (create; one
 * already there is the same Job), and finished when the Job says so, with the result its pod
 * left in its termination message (JSON from `tiercache cluster … --result-file`, or the end
 * of its log when it died before writing one).
 */
import type { V1Job } from '@kubernetes/client-node';
import { isConflict, isNotFound, type Kube } from '../runtime/kube.ts';

export type JobState =
  | { state: 'absent' }
  | ({ startTime: string | undefined } & (
      | { state: 'running' }
      | { state: 'succeeded'; result: Record<string, unknown> }
      | { state: 'failed'; message: string }
    ));

export async function startJob(kube: Kube, job: V1Job): Promise<void> {
  try {
    await kube.batch.createNamespacedJob({ namespace: job.metadata!.namespace!, body: job });
  } catch (err) {
    if (!isConflict(err)) throw err;
  }
}

function parseResult(message: string | undefined): Record<string, unknown> | undefined {
  if (!message) return undefined;
  try {
    return JSON.parse(message) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export async function jobState(kube: Kube, namespace: string, name: string): Promise<JobState> {
  let job: V1Job;
  try {
    job = await kube.batch.readNamespacedJob({ namespace, name });
  } catch (err) {
    if (isNotFound(err)) return { state: 'absent' };
    throw err;
  }
  const conditions = job.status?.conditions ?? [];
  const done = (type: string) => conditions.some((c) => c.type === type && c.status === 'True');
  const succeeded = done('Complete') || (job.status?.succeeded ?? 0) > 0;
  const failed = done('Failed') || (job.status?.failed ?? 0) > 0;
  const started = job.status?.startTime;
  const startTime = started ? new Date(started).toISOString() : undefined;
  if (!succeeded && !failed) return { state: 'running', startTime };
  const pods = await kube.core.listNamespacedPod({
    namespace,
    labelSelector: `job-name=${name}`,
  });
  const message = pods.items
    .map((p) => p.status?.containerStatuses?.[0]?.state?.terminated?.message)
    .find((m) => m !== undefined);
  const result = parseResult(message);
  // A Job that succeeded did its work, whatever became of its message (cut short, lost).
  if (succeeded) return { state: 'succeeded', result: result ?? {}, startTime };
  const reason =
    (result?.error as string | undefined) ??
    message?.trim().split('\n').slice(-3).join(' ') ??
    conditions.find((c) => c.type === 'Failed')?.message ??
    'the Job failed';
  return { state: 'failed', message: reason.slice(0, 1000), startTime };
}
