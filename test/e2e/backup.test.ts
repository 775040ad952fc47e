/**
 * Backup and restore through the operator, persistence off (the default) and on side by side:
 * a 3-shard CacheCluster holds 50 000 keys (a quarter with a TTL); a CacheClusterBackup made
 * by hand is taken by a Job from in-sync replicas while a writer runs; the CacheCluster is
 * deleted (its backup claim stays); a new 4-shard CacheCluster restores the backup: every key
 * comes back with its value and TTL, and so does every write acknowledged before the backup
 * was asked for (writes during it are in it up to each shard's snapshot; the test counts them).
 * Then a schedule makes a backup every 15 s and retention keeps the newest two.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CacheClusterBackup } from '../../operator/api/types.ts';
import { E2ECacheCluster } from '../helpers/e2e-cachecluster.ts';
import { installOperator, kubectl, kubectlJson, pods, removeAll } from '../helpers/kube.ts';
import { waitFor } from '../helpers/wait.ts';

const OPERATOR_NS = `tiercache-b${process.pid}`;
const RELEASE = `tb${process.pid}`;
const KEYS = 50_000;
const HOUR_MS = 3_600_000;

interface Mode {
  label: string;
  persistence: boolean;
  ns: string;
  source: E2ECacheCluster;
  target: E2ECacheCluster;
  /** Writes acknowledged before the backup was asked for: every one must come back. */
  before: number[];
  /** Writes acknowledged while it ran: counted, not required. */
  during: number[];
}

const MODES: Mode[] = [false, true].map((persistence) => {
  const ns = `backup-${persistence ? 'on' : 'off'}-${process.pid}`;
  return {
    label: `persistence ${persistence ? 'on' : 'off'}`,
    persistence,
    ns,
    source: new E2ECacheCluster(ns, 'src'),
    target: new E2ECacheCluster(ns, 'dst'),
    before: [],
    during: [],
  };
});

function cacheCluster(name: string, persistence: boolean, spec: object): object {
  return {
    apiVersion: 'tiercache.io/v1alpha1',
    kind: 'CacheCluster',
    metadata: { name },
    spec: { redis: { persistence: { enabled: persistence } }, proxies: [], ...spec },
  };
}

function backups(ns: string): CacheClusterBackup[] {
  return kubectlJson<{ items: CacheClusterBackup[] }>(['get', 'cacheclusterbackups', '-n', ns])
    .items;
}

/** Merges `backup` into the target cluster's spec.backup. */
function setBackup(m: Mode, backup: object): void {
  const patch = JSON.stringify({ spec: { backup } });
  kubectl(['patch', 'cachecluster', 'dst', '-n', m.ns, '--type=merge', '-p', patch]);
}

const backup = (ns: string, name: string) => backups(ns).find((b) => b.metadata.name === name);

beforeAll(async () => {
  for (const m of MODES) kubectl(['create', 'namespace', m.ns]);
  installOperator(RELEASE, OPERATOR_NS, [`watchNamespaces={${MODES.map((m) => m.ns)}}`]);
  for (const m of MODES) {
    kubectl(
      ['apply', '-n', m.ns, '-f', '-'],
      JSON.stringify(cacheCluster('src', m.persistence, { backup: { keep: 2 } })),
    );
  }
  await Promise.all(MODES.map((m) => m.source.waitReadyWithReplicas(3, 1)));
}, 300_000);

afterAll(() => {
  removeAll(
    RELEASE,
    OPERATOR_NS,
    MODES.map((m) => m.ns),
  );
});

describe('backup and restore, persistence off (the default) and on', () => {
  it('backs up 3 shards under a writer from their replicas (a CacheClusterBackup and its Job)', async () => {
    await Promise.all(
      MODES.map(async (m) => {
        await m.source.writeKeys('k', KEYS);
        await m.source.withClient((c) =>
          Promise.all(Array.from({ length: KEYS / 4 }, (_, i) => c.pexpire(`k:${i * 4}`, HOUR_MS))),
        );
        const early = m.source.startAckedWriter('before');
        await waitFor(`${m.label}: the writer to be under way`, () =>
          m.source.withClient(async (c) => (await c.exists('before:100')) === 1),
        );
        m.before = (await early.stop()).acked;
        const writer = m.source.startAckedWriter('during');
        kubectl(
          ['apply', '-n', m.ns, '-f', '-'],
          JSON.stringify({
            apiVersion: 'tiercache.io/v1alpha1',
            kind: 'CacheClusterBackup',
            metadata: { name: 'manual' },
            spec: { cacheCluster: 'src' },
          }),
        );
        const done = await waitFor(
          `${m.label}: the backup to finish`,
          async () => {
            const status = backup(m.ns, 'manual')?.status;
            return status?.phase === 'Completed' || status?.phase === 'Failed' ? status : undefined;
          },
          180_000,
          500,
        );
        expect(done, m.label).toMatchObject({ phase: 'Completed' });
        const result = await writer.stop();
        m.during = result.acked;
        expect(result.failures, m.label).toBe(0);
      }),
    );
    for (const m of MODES) {
      const status = backup(m.ns, 'manual')!.status!;
      process.stdout.write(
        `${m.label}: backup of ${status.keys} keys, ${status.bytes} bytes; ${m.before.length} writes before it, ${m.during.length} during it\n`,
      );
      expect(status.shards, m.label).toHaveLength(3);
      expect(
        status.shards!.every((s) => s.role === 'replica'),
        m.label,
      ).toBe(true);
      expect(status.keys, m.label).toBeGreaterThanOrEqual(KEYS + m.before.length);
      expect(status.bytes, m.label).toBeGreaterThan(0);
      expect(status.claimName, m.label).toBe('src-backups');
      expect(
        m.source.events().some((e) => e.reason === 'BackupCompleted'),
        m.label,
      ).toBe(true);
      await waitFor(`${m.label}: the cluster's status to show its last backup`, () => {
        const last = m.source.get().status?.backup?.lastFinished;
        return last?.name === 'manual' && last.phase === 'Completed' && last.keys === status.keys;
      });
    }
  }, 300_000);

  it('deleting the CacheCluster keeps its backups; a new 4-shard cluster restores every key with its TTL', async () => {
    for (const m of MODES) kubectl(['delete', 'cachecluster', 'src', '-n', m.ns, '--wait=true']);
    await Promise.all(
      MODES.map((m) =>
        waitFor(
          `${m.label}: the old cluster's pods to go`,
          async () => pods(m.ns, m.source.selector).length === 0,
          120_000,
        ),
      ),
    );
    for (const m of MODES) {
      expect(kubectl(['get', 'pvc', 'src-backups', '-n', m.ns, '-o', 'name']).trim()).toBe(
        'persistentvolumeclaim/src-backups',
      );
      kubectl(
        ['apply', '-n', m.ns, '-f', '-'],
        JSON.stringify(
          cacheCluster('dst', m.persistence, {
            redis: { shards: 4, persistence: { enabled: m.persistence } },
            restore: { backup: 'manual' },
          }),
        ),
      );
    }
    await Promise.all(
      MODES.map((m) =>
        waitFor(
          `${m.label}: the restore to finish`,
          async () => {
            const r = m.target.get().status?.restore;
            return r?.phase === 'Completed' || r?.phase === 'Failed' ? r : undefined;
          },
          300_000,
          1000,
        ),
      ),
    );
    for (const m of MODES)
      expect(m.target.get().status?.restore, m.label).toMatchObject({ phase: 'Completed' });
    for (const m of MODES) {
      const taken = backup(m.ns, 'manual')!.status!;
      const restore = m.target.get().status!.restore!;
      process.stdout.write(`${m.label}: restore ${JSON.stringify(restore)}\n`);
      expect(restore, m.label).toMatchObject({
        backup: 'manual',
        keysTotal: taken.keys,
        keysRestored: taken.keys,
        keysExisting: 0,
      });
      expect(m.target.get().status!.shards, m.label).toHaveLength(4);
      expect(await m.target.missingKeys('k', KEYS), m.label).toEqual([]);
      expect(await m.target.missing(m.before.map((i) => `before:${i}`)), m.label).toEqual([]);
      const during = await m.target.missing(m.during.map((i) => `during:${i}`));
      process.stdout.write(
        `${m.label}: ${m.during.length - during.length} of the ${m.during.length} writes made during the backup are in it\n`,
      );
      const ttls = await m.target.withClient((c) =>
        Promise.all(Array.from({ length: KEYS / 4 }, (_, i) => c.pttl(`k:${i * 4}`))),
      );
      expect(
        ttls.filter((t) => t <= 0 || t > HOUR_MS),
        m.label,
      ).toEqual([]);
      const none = await m.target.withClient((c) =>
        Promise.all(Array.from({ length: 500 }, (_, i) => c.pttl(`k:${i * 4 + 1}`))),
      );
      expect(new Set(none), m.label).toEqual(new Set([-1]));
      expect(
        m.target.events().some((e) => e.reason === 'RestoreCompleted'),
        m.label,
      ).toBe(true);
      await m.target.waitHealthy();
    }
  }, 420_000);

  it('a schedule makes backups; retention keeps the newest two, objects and files', async () => {
    for (const m of MODES) setBackup(m, { schedule: '*/15 * * * * *', keep: 2 });
    await Promise.all(
      MODES.map(async (m) => {
        const seen = new Set<string>();
        await waitFor(
          `${m.label}: three scheduled backups made, the newest two kept`,
          async () => {
            const scheduled = backups(m.ns).filter(
              (b) => b.metadata.labels?.['tiercache.io/scheduled'] === 'true',
            );
            for (const b of scheduled) seen.add(b.metadata.name);
            const completed = scheduled.filter((b) => b.status?.phase === 'Completed');
            // Three made, and the oldest's object gone: two left, both complete.
            return seen.size >= 3 && scheduled.length === 2 && completed.length === 2;
          },
          240_000,
          1000,
        );
        setBackup(m, { schedule: '' });
        const kept = backups(m.ns).filter(
          (b) =>
            b.metadata.labels?.['tiercache.io/scheduled'] === 'true' &&
            b.status?.phase === 'Completed',
        );
        // The newest Job deleted the files of the ones beyond two; the operator their objects.
        expect(
          kept.some((b) => /retention deleted the files of dst-/.test(b.status?.message ?? '')),
          m.label,
        ).toBe(true);
        expect(
          backup(m.ns, 'manual')?.status?.phase,
          `${m.label}: a backup made by hand is kept`,
        ).toBe('Completed');
        expect(m.target.get().status?.backup?.lastBackup, m.label).toMatch(/^dst-/);
      }),
    );
  }, 300_000);
});
