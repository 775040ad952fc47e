/**
 * When a scheduled backup is due (pure), as the kubebuilder CronJob controller decides it:
 * the latest scheduled time since the last one made (or since the cluster was created) that
 * has come, and the next one to wake up for. Missed times collapse into one backup. Times
 * are UTC.
 */
import { Cron } from 'croner';
import { TiercacheError } from '../../lib/errors.ts';

export interface ScheduleDecision {
  /** A backup is due for this scheduled time (undefined: nothing due). */
  due: Date | undefined;
  /** The next scheduled time after now. */
  next: Date | undefined;
}

export function parseSchedule(schedule: string): Cron {
  try {
    return new Cron(schedule, { paused: true, mode: 'auto', timezone: 'Etc/UTC' });
  } catch (err) {
    throw new TiercacheError(
      'BAD_REQUEST',
      `backup.schedule "${schedule}" is not a cron schedule: ${(err as Error).message}`,
    );
  }
}

export function scheduleDecision(schedule: string, since: Date, now: Date): ScheduleDecision {
  const cron = parseSchedule(schedule);
  const latest = cron.previousRuns(1, now)[0];
  return {
    due: latest && latest > since && latest <= now ? latest : undefined,
    next: cron.nextRun(now) ?? undefined,
  };
}

/** The name of the backup made for a scheduled time: the same time always gives the same name. */
export function scheduledBackupName(cluster: string, at: Date): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${cluster}-${stamp}`;
}
