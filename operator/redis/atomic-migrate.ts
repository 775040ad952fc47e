/**
 * Valkey ≥ 9's atomic slot migration: `CLUSTER MIGRATESLOTS` on the source starts a job that
 * snapshots the slots, streams them to the target and hands ownership over in one step, so no
 * slot is ever seen half moved (no ASK redirections, no IMPORTING/MIGRATING left by a crash: a
 * failed job rolls back by itself). Found by feature detection; Redis 7 keeps the MIGRATE path.
 */
import { TiercacheError } from '../../lib/errors.ts';
import { formatRanges, slotCount, toRanges } from '../../lib/redis/topology.ts';
import type { Connections } from './connections.ts';
import type { SlotMove } from './migrate.ts';

/** Whether every node runs a server with CLUSTER MIGRATESLOTS. */
export async function supportsAtomicMigration(
  conns: Connections,
  addrs: string[],
): Promise<boolean> {
  const replies = await Promise.all(
    addrs.map((a) => conns.call<unknown[]>(a, 'COMMAND', 'INFO', 'CLUSTER|MIGRATESLOTS')),
  );
  return addrs.length > 0 && replies.every((r) => Array.isArray(r) && r[0] != null);
}

export interface SlotJob {
  name: string;
  operation: string;
  slotRanges: string;
  target: string;
  source: string;
  state: string;
  message: string;
}

/** `CLUSTER GETSLOTMIGRATIONS`: one flat field/value list per job. */
export function parseSlotJobs(reply: unknown): SlotJob[] {
  if (!Array.isArray(reply)) return [];
  return reply.map((entry) => {
    const fields = new Map<string, string>();
    const list = Array.isArray(entry) ? entry : [];
    for (let i = 0; i + 1 < list.length; i += 2) fields.set(String(list[i]), String(list[i + 1]));
    return {
      name: fields.get('name') ?? '',
      operation: fields.get('operation') ?? '',
      slotRanges: fields.get('slot_ranges') ?? '',
      target: fields.get('target_node') ?? '',
      source: fields.get('source_node') ?? '',
      state: fields.get('state') ?? '',
      message: fields.get('message') ?? '',
    };
  });
}

const FINISHED = new Set(['success', 'failed', 'cancelled']);
const POLL_MS = 50;

export interface AtomicOptions {
  signal?: AbortSignal | undefined;
  timeoutMs: number;
  onJobDone?: (slots: number, keys: number) => void;
}

/**
 * Moves the slots with one job per source and target (all their ranges at once: each job
 * costs the source a snapshot). Waits for jobs a previous run left going first. Returns the
 * slots and keys moved (keys counted on the source just before).
 */
export async function migrateSlotsAtomically(
  conns: Connections,
  moves: SlotMove[],
  opts: AtomicOptions,
): Promise<{ slots: number; keys: number }> {
  const groups = new Map<string, SlotMove[]>();
  for (const m of moves) {
    const k = `${m.from.addr} ${m.to.id}`;
    groups.set(k, [...(groups.get(k) ?? []), m]);
  }
  const sources = [...new Set(moves.map((m) => m.from.addr))];
  await Promise.all(sources.map((s) => waitForJobs(conns, s, () => true, opts)));
  let slots = 0;
  let keys = 0;
  await Promise.all(
    [...groups.values()].map(async (group) => {
      const { from, to } = group[0]!;
      const ranges = toRanges(group.map((m) => m.slot));
      const counts = await Promise.all(
        group.map((m) => conns.call<number>(from.addr, 'CLUSTER', 'COUNTKEYSINSLOT', m.slot)),
      );
      const before = new Set(parseSlotJobs(await jobsOn(conns, from.addr)).map((j) => j.name));
      const args = ranges.flatMap((r) => [r.start, r.end]);
      await conns.call(from.addr, 'CLUSTER', 'MIGRATESLOTS', 'SLOTSRANGE', ...args, 'NODE', to.id);
      const wanted = formatRanges(ranges).split(',').sort().join(',');
      const ours = (j: SlotJob) =>
        !before.has(j.name) &&
        j.operation === 'EXPORT' &&
        j.target === to.id &&
        j.slotRanges.split(',').sort().join(',') === wanted;
      const job = await waitForJobs(conns, from.addr, ours, opts);
      if (job?.state !== 'success')
        throw new TiercacheError(
          'UPSTREAM_FAILED',
          `atomic migration of slots ${formatRanges(ranges)} from ${from.addr} to ${to.addr} ${job?.state ?? 'vanished'}${job?.message ? `: ${job.message}` : ''}`,
        );
      const moved = counts.reduce((a, b) => a + b, 0);
      slots += slotCount(ranges);
      keys += moved;
      opts.onJobDone?.(slotCount(ranges), moved);
    }),
  );
  return { slots, keys };
}

const jobsOn = (conns: Connections, addr: string) =>
  conns.call<unknown>(addr, 'CLUSTER', 'GETSLOTMIGRATIONS');

/**
 * Polls the source until every job `match` selects has finished; returns the last one seen.
 * A shutdown stops the waiting only: the jobs finish (or roll back) inside Valkey either way.
 */
async function waitForJobs(
  conns: Connections,
  addr: string,
  match: (j: SlotJob) => boolean,
  opts: AtomicOptions,
): Promise<SlotJob | undefined> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const jobs = parseSlotJobs(await jobsOn(conns, addr)).filter(
      (j) => j.operation === 'EXPORT' && match(j),
    );
    const running = jobs.filter((j) => !FINISHED.has(j.state));
    if (running.length === 0) return jobs[0];
    if (opts.signal?.aborted)
      throw new TiercacheError(
        'CANCELLED',
        `stopped waiting for atomic slot migrations on ${addr}: shutting down; Valkey finishes or rolls them back itself`,
      );
    if (Date.now() > deadline)
      throw new TiercacheError(
        'TIMEOUT',
        `atomic slot migrations on ${addr} still running after ${opts.timeoutMs} ms (${running.map((j) => `${j.slotRanges}: ${j.state}`).join('; ')})`,
      );
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
